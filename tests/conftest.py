import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_fake_rollout(rng, T=30, action_dim=3, terminated_last=False):
    obs = rng.integers(0, 256, size=(T, 64, 64, 3), dtype=np.uint8)
    action = rng.uniform(-1, 1, size=(T, action_dim)).astype(np.float32)
    reward = rng.normal(size=T).astype(np.float32)
    terminated = np.zeros(T, bool)
    truncated = np.zeros(T, bool)
    if terminated_last:
        terminated[-1] = True
    else:
        truncated[-1] = True
    return obs, action, reward, terminated, truncated
