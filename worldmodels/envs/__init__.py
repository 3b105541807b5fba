"""Environment adapters: make_env(name) gives a gymnasium env whose observations are 64x64x3 uint8.

Importing this package registers `worldmodels/CarRacingFast-v3` with gymnasium (the fast renderer:
the stock env's pixels, faster), so `gym.make("worldmodels/CarRacingFast-v3")` works after
`import worldmodels.envs`. It sets no environment variable: CarRacing renders off-screen
(rgb_array) without a display; pygame's import banner is hidden only while pygame is imported.
"""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def _quiet_pygame_import():
    """Hide pygame's import banner, then put PYGAME_HIDE_SUPPORT_PROMPT back as it was."""
    before = os.environ.get("PYGAME_HIDE_SUPPORT_PROMPT")
    os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYGAME_HIDE_SUPPORT_PROMPT"]
        else:
            os.environ["PYGAME_HIDE_SUPPORT_PROMPT"] = before


with _quiet_pygame_import():
    from worldmodels.envs import fast_carracing  # noqa: F401 - registers worldmodels/CarRacingFast-v3

from worldmodels.envs.registry import ENV_SPECS, EnvSpec, make_env  # noqa: E402

__all__ = ["ENV_SPECS", "EnvSpec", "make_env"]
