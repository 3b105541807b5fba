"""VizDoom TakeCover for World Models (paper, section 4): frames resized to 64x64x3, one controller
output mapped to the three actions, survival reward of one per step, episodes capped at 2100 steps.

The game ships inside the `vizdoom` package (no download); its gymnasium id is VizdoomTakeCover-v1,
whose Discrete(3) actions are 0 = no-op, 1 = MOVE_LEFT, 2 = MOVE_RIGHT.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from PIL import Image

GAME_ID = "VizdoomTakeCover-v1"
MAX_STEPS = 2100


def preprocess(screen: np.ndarray) -> np.ndarray:
    """uint8 [240,320,3] -> uint8 [64,64,3] (the whole screen, bilinear)."""
    return np.asarray(Image.fromarray(screen).resize((64, 64), Image.BILINEAR), dtype=np.uint8)


class DoomFrames(gym.Wrapper):
    """Observations uint8 [64,64,3]; actions float32 [1] in {-1, 0, 1} (left, stay, right)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return preprocess(obs["screen"]), info

    def step(self, action):
        a = float(np.asarray(action).reshape(-1)[0])
        discrete = 1 if a < -1 / 3 else 2 if a > 1 / 3 else 0
        obs, reward, terminated, truncated, info = self.env.step(discrete)
        return preprocess(obs["screen"]), float(reward), terminated, truncated, info


def make_doom(max_steps: int = MAX_STEPS, fast: bool = True, **kwargs) -> gym.Env:
    """TakeCover with 64x64 frames, truncated after `max_steps` steps (`fast` is for CarRacing only)."""
    from vizdoom import gymnasium_wrapper  # noqa: F401 - registers the Vizdoom ids

    return DoomFrames(gym.make(GAME_ID, max_episode_steps=max_steps, **kwargs))


def map_actions(out: np.ndarray) -> np.ndarray:
    """Controller output [...,1] -> action [...,1] in {-1, 0, 1}: tanh, then thirds (the paper's mapping)."""
    t = np.tanh(out)
    return np.where(t < -1 / 3, -1.0, np.where(t > 1 / 3, 1.0, 0.0)).astype(np.float32)


class RandomPolicy:
    """Exploration for stage 1: random actions, each held for a random number of steps (1-10), so the
    agent strafes across the room rather than jittering in place."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.left = 0
        self.action = np.zeros(1, np.float32)

    def __call__(self, env: gym.Env) -> np.ndarray:
        if self.left <= 0:
            self.action = np.array([self.rng.integers(-1, 2)], np.float32)
            self.left = int(self.rng.integers(1, 11))
        self.left -= 1
        return self.action


POLICIES = {"random": RandomPolicy}
