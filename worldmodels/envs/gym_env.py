"""Any gymnasium env with image observations, as a World Models env: `--env gym:<id>`.

The env's name carries everything needed to build it again in any process (a worker, a later
stage, a shipped bundle's reader): `gym:<id>`, then, when options are given, `?` and their JSON
(sorted keys): `kwargs` for gym.make, `import` (a module that registers the id), `obs` (where the
image is: "auto" the observation itself or the one image in a dict observation, "render" the env's
render(), "key:NAME" one entry of a dict observation) and `crop` ([top, bottom, left, right]
pixels cut before resizing). Artifacts record that name, so a stage refuses inputs made by another
env or other kwargs.

Frames are resized (bilinear) to 64x64x3 uint8 (grey frames repeated to three channels).
Discrete(n) actions: M sees a one-hot [n]; C has n outputs, the largest wins. Box actions (1-D):
C's outputs squashed by tanh and scaled to the bounds. Exploration: 'random' (a uniform action each
step) and 'random-long' (each random action held 1 to 30 steps).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json

import gymnasium as gym
import numpy as np
from PIL import Image

PREFIX = "gym:"
OBS_SOURCES = ("auto", "render")


def compose_name(
    env_id: str, kwargs: dict | None = None, module: str | None = None, obs: str = "auto", crop=None
) -> str:
    """The canonical env name for these options (what artifacts record)."""
    options = {}
    if kwargs:
        options["kwargs"] = kwargs
    if module:
        options["import"] = module
    if obs != "auto":
        options["obs"] = obs
    if crop:
        options["crop"] = list(crop)
    return PREFIX + env_id + ("?" + json.dumps(options, sort_keys=True, separators=(",", ":")) if options else "")


def parse_name(name: str) -> tuple[str, dict]:
    """`gym:<id>[?json]` -> (id, options); ValueError naming what is wrong."""
    if not name.startswith(PREFIX) or len(name) == len(PREFIX):
        raise ValueError(f"{name!r} is not a gym env name: use gym:<id>, e.g. gym:ALE/Pong-v5")
    env_id, _, rest = name[len(PREFIX) :].partition("?")
    options = {}
    if rest:
        try:
            options = json.loads(rest)
        except ValueError as e:
            raise ValueError(f"env {name!r}: its options are not JSON ({e})") from e
    unknown = set(options) - {"kwargs", "import", "obs", "crop"}
    if unknown or not isinstance(options.get("kwargs", {}), dict):
        raise ValueError(f"env {name!r}: unknown options {sorted(unknown)} or kwargs that are not a JSON object")
    obs = options.get("obs", "auto")
    if obs not in OBS_SOURCES and not (isinstance(obs, str) and obs.startswith("key:")):
        raise ValueError(f"env {name!r}: --obs must be 'auto', 'render' or 'key:NAME', got {obs!r}")
    crop = options.get("crop")
    if crop is not None and (len(crop) != 4 or not all(isinstance(c, int) and c >= 0 for c in crop)):
        raise ValueError(f"env {name!r}: --crop must be four pixel counts TOP BOTTOM LEFT RIGHT, got {crop}")
    return env_id, options


def _gym_make(name: str, **extra):
    env_id, options = parse_name(name)
    if options.get("import"):
        try:
            importlib.import_module(options["import"])
        except ImportError as e:
            raise ValueError(f"env {name!r}: cannot import {options['import']!r} ({e}); pip install it") from e
    if env_id.startswith("ALE/"):
        try:
            import ale_py

            gym.register_envs(ale_py)
        except ImportError as e:
            raise ValueError(f"env {env_id!r} needs ale-py: pip install ale-py") from e
    kwargs = {**options.get("kwargs", {}), **extra}
    if options.get("obs") == "render":
        kwargs.setdefault("render_mode", "rgb_array")
    try:
        return gym.make(env_id, **kwargs), options
    except gym.error.Error as e:
        raise ValueError(
            f"env {env_id!r} cannot be made ({type(e).__name__}: {e}); is it registered (--import)?"
        ) from e
    except TypeError as e:
        raise ValueError(f"env {env_id!r} does not take these --env-kwargs ({e})") from e


def _image_of(obs, env: gym.Env, source: str) -> np.ndarray:
    if source == "render":
        image = env.render()
    elif source.startswith("key:"):
        image = obs[source[4:]]
    elif isinstance(obs, dict):
        images = [v for v in obs.values() if isinstance(v, np.ndarray) and v.ndim == 3 and v.dtype == np.uint8]
        if len(images) != 1:
            raise ValueError("a dict observation with no single uint8 image: choose one with --obs key:NAME")
        image = images[0]
    else:
        image = obs
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(
            f"the observation is not an image (uint8 HxWxC; got {image.dtype} {image.shape}): "
            "use --obs render, or --obs key:NAME for a dict observation"
        )
    return image


def frame_64(image: np.ndarray, crop=None) -> np.ndarray:
    """uint8 [H,W(,C)] -> uint8 [64,64,3]: crop [top, bottom, left, right], bilinear resize, three channels."""
    if crop:
        top, bottom, left, right = crop
        image = image[top : image.shape[0] - bottom, left : image.shape[1] - right]
    if image.ndim == 2:
        image = image[:, :, None]
    image = image[:, :, :3] if image.shape[2] >= 3 else np.repeat(image, 3, axis=2)
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((64, 64), Image.BILINEAR), np.uint8)


class GymPixels(gym.Env):
    """The named gymnasium env with 64x64x3 uint8 frames and the action M sees (one-hot for Discrete)."""

    metadata = {"render_modes": []}

    def __init__(self, name: str, max_steps: int = 1000, fast: bool = True, **kwargs):
        self.env, options = _gym_make(name, **kwargs)
        self.source, self.crop = options.get("obs", "auto"), options.get("crop")
        self.discrete = isinstance(self.env.action_space, gym.spaces.Discrete)
        if self.discrete:
            n = int(self.env.action_space.n)
            self.action_space = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        else:
            self.action_space = self.env.action_space
        self.observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.max_steps, self.t = max_steps, 0
        if self.env.spec is not None:  # the step cap, where code reads it (gym's own TimeLimit, if any, also holds)
            self.spec = dataclasses.replace(self.env.spec, max_episode_steps=max_steps)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.t = 0
        return frame_64(_image_of(obs, self.env, self.source), self.crop), info

    def step(self, action):
        a = int(np.argmax(action)) if self.discrete else np.asarray(action, self.env.action_space.dtype)
        obs, reward, terminated, truncated, info = self.env.step(a)
        self.t += 1
        truncated = bool(truncated or (self.t >= self.max_steps and not terminated))
        return (
            frame_64(_image_of(obs, self.env, self.source), self.crop),
            float(reward),
            bool(terminated),
            truncated,
            info,
        )

    def close(self):
        self.env.close()


class RandomPolicy:
    """Exploration for stage 1: a uniformly random action each step, or held for 1..max_hold steps."""

    def __init__(self, rng: np.random.Generator, max_hold: int = 1):
        self.rng, self.max_hold, self.left, self.action = rng, max_hold, 0, None

    def __call__(self, env: GymPixels) -> np.ndarray:
        if self.left <= 0:
            space = env.action_space
            if getattr(env, "discrete", False):
                self.action = np.eye(space.shape[0], dtype=np.float32)[self.rng.integers(space.shape[0])]
            else:
                self.action = self.rng.uniform(space.low, space.high).astype(np.float32)
            self.left = int(self.rng.integers(1, self.max_hold + 1))
        self.left -= 1
        return self.action


POLICIES = {"random": RandomPolicy, "random-long": functools.partial(RandomPolicy, max_hold=30)}


@functools.lru_cache(maxsize=32)
def spaces_of(name: str) -> tuple[bool, int, tuple | None]:
    """(discrete, M's action size, Box bounds (low, high) or None) of the named env, made once to look."""
    env, options = _gym_make(name)
    try:
        space = env.action_space
        if isinstance(space, gym.spaces.Discrete):
            return True, int(space.n), None
        if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            return False, int(space.shape[0]), (space.low.astype(np.float32), space.high.astype(np.float32))
        raise ValueError(
            f"env {name!r}: action space {space} is not supported (Discrete, or a 1-D Box); wrap the env to one"
        )
    finally:
        env.close()


def action_mapper(name: str):
    """C's outputs [..., n] -> the env actions M sees: one-hot of the largest (Discrete) or tanh scaled
    to the Box's bounds."""
    discrete, n, bounds = spaces_of(name)
    if discrete:

        def one_hot(out: np.ndarray) -> np.ndarray:
            out = np.asarray(out)
            return np.eye(n, dtype=np.float32)[np.argmax(out, axis=-1)]

        return one_hot
    low, high = bounds

    def box(out: np.ndarray) -> np.ndarray:
        return (low + (np.tanh(out) + 1.0) * 0.5 * (high - low)).astype(np.float32)

    return box
