#!/usr/bin/env python
"""Bench (issue 3a): env steps/s, stock CarRacing-v3 vs worldmodels/CarRacingFast-v3, one process,
the same seeds and the same actions, interleaved so machine noise hits both alike.

Usage: python bench/env_steps.py [--steps 1000] [--repeats 5]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from worldmodels.envs.fast_carracing import ENV_ID  # noqa: E402


def steps_per_second(env_id: str, seed: int, actions: np.ndarray) -> float:
    env = gym.make(env_id, max_episode_steps=len(actions) + 1)
    env.reset(seed=seed)
    t = time.perf_counter()
    for a in actions:
        env.step(a)
    dt = time.perf_counter() - t
    env.close()
    return len(actions) / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    actions = np.stack([rng.uniform(-1, 1, a.steps), rng.uniform(0, 1, a.steps), rng.uniform(0, 0.2, a.steps)], 1)
    stock, fast, ratios = [], [], []
    for r in range(a.repeats):
        s = steps_per_second("CarRacing-v3", r, actions.astype(np.float32))
        f = steps_per_second(ENV_ID, r, actions.astype(np.float32))
        stock.append(s)
        fast.append(f)
        ratios.append(f / s)
        print(f"repeat {r}: stock {s:7.1f} steps/s   fast {f:7.1f} steps/s   ratio {f / s:.2f}")
    print(
        f"median: stock {statistics.median(stock):.1f} steps/s, fast {statistics.median(fast):.1f} steps/s, "
        f"ratio {statistics.median(ratios):.2f}x ({a.repeats} repeats x {a.steps} steps, random actions)"
    )


if __name__ == "__main__":
    main()
