"""CarRacing-v3 for World Models: frames cropped above the dashboard and resized to 64x64x3,
the paper's action squashing, and the exploration policy of stage 1.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from PIL import Image

STOCK_ID = "CarRacing-v3"
DASHBOARD_ROWS = 12  # the bottom 12 of the 96 rows hold the score and the gauges


def preprocess(frame: np.ndarray) -> np.ndarray:
    """uint8 [96,96,3] -> uint8 [64,64,3]: crop the dashboard, resize (bilinear)."""
    img = Image.fromarray(frame[: frame.shape[0] - DASHBOARD_ROWS])
    return np.asarray(img.resize((64, 64), Image.BILINEAR), dtype=np.uint8)


class Frame64(gym.ObservationWrapper):
    """Observations become uint8 [64,64,3]."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return preprocess(observation)


def make_carracing(max_steps: int = 1000, fast: bool = True, **kwargs) -> gym.Env:
    """CarRacing with 64x64 frames, truncated after `max_steps` steps.

    fast=True uses worldmodels/CarRacingFast-v3 (same pixels, faster renderer) when available.
    """
    env_id = STOCK_ID
    if fast:
        from worldmodels.envs import fast_carracing  # noqa: F401 - registers the id

        env_id = fast_carracing.ENV_ID
    return Frame64(gym.make(env_id, max_episode_steps=max_steps, **kwargs))


def map_actions(out: np.ndarray) -> np.ndarray:
    """Controller outputs [...,3] -> (steer in [-1,1], gas in [0,1], brake in [0,1]), as the paper's code."""
    t = np.tanh(out)
    steer = t[..., 0]
    gas = (t[..., 1] + 1.0) / 2.0
    brake = np.clip(t[..., 2], 0.0, 1.0)
    return np.stack([steer, gas, brake], axis=-1).astype(np.float32)


class PursuitPolicy:
    """Exploration for stage 1: a noisy pure-pursuit driver that follows the track.

    Uniform random actions barely move the car, so their frames show only the start line. This
    policy steers towards a point a few tiles ahead (read from the env's track geometry, which the
    agent itself never sees), at a random target speed, with smooth steering noise and occasional
    bursts of random actions that take the car onto the grass and back. Per-episode parameters are
    drawn from `rng`, so V sees careful and sloppy driving, straight and spinning.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.lookahead = int(rng.integers(2, 7))
        self.gain = float(rng.uniform(1.0, 3.0))
        self.target_speed = float(rng.uniform(30.0, 80.0))
        self.noise_scale = float(rng.uniform(0.05, 0.3))
        self.burst_prob = float(rng.uniform(0.0, 0.01))
        self.noise = 0.0
        self.burst_left = 0
        self.burst_action = np.zeros(3, np.float32)

    def __call__(self, env: gym.Env) -> np.ndarray:
        car_env = env.unwrapped
        if self.burst_left > 0:
            self.burst_left -= 1
            return self.burst_action
        if self.rng.random() < self.burst_prob:
            self.burst_left = int(self.rng.integers(5, 25))
            self.burst_action = np.array(
                [self.rng.uniform(-1, 1), self.rng.uniform(0, 1), self.rng.uniform(0, 0.3)], np.float32
            )
            return self.burst_action
        hull = car_env.car.hull
        x, y = hull.position
        track = np.asarray(car_env.track)[:, 2:4]
        i = int(np.argmin(np.sum((track - (x, y)) ** 2, axis=1)))
        tx, ty = track[(i + self.lookahead) % len(track)]
        hx, hy = -math.sin(hull.angle), math.cos(hull.angle)  # Box2D car's forward vector
        dx, dy = tx - x, ty - y
        err = math.atan2(hx * dy - hy * dx, hx * dx + hy * dy)  # > 0: target to the left
        self.noise = 0.9 * self.noise + self.noise_scale * math.sqrt(1 - 0.81) * self.rng.normal()
        steer = float(np.clip(-self.gain * err + self.noise, -1, 1))
        speed = math.hypot(*hull.linearVelocity)
        gas = 0.8 if speed < self.target_speed else 0.0
        brake = 0.3 if speed > self.target_speed * 1.3 else 0.0
        return np.array([steer, gas, brake], np.float32)


class RandomPolicy:
    """Uniform random actions (the weak baseline: the car barely leaves the start)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def __call__(self, env: gym.Env) -> np.ndarray:
        return np.array([self.rng.uniform(-1, 1), self.rng.uniform(0, 1), self.rng.uniform(0, 1)], np.float32)


POLICIES = {"pursuit": PursuitPolicy, "random": RandomPolicy}
