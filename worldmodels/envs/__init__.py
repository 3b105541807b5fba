"""Environment adapters: make_env(name) gives a gymnasium env whose observations are 64x64x3 uint8.

Importing this package sets SDL_VIDEODRIVER=dummy (headless pygame) unless the user set it.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from worldmodels.envs.registry import ENV_SPECS, EnvSpec, make_env  # noqa: E402

__all__ = ["ENV_SPECS", "EnvSpec", "make_env"]
