#!/usr/bin/env python
"""Bench (issues 3 and 17, what bounds the targets): cProfile of a rollout worker's loop, the shipped
CarRacing agent (pretrained/carracing-laptop, numpy V, M, C) driving K fast envs in lockstep
(`runtime.rollout.run_batch`, as stage 5 and evaluate do), the top functions by own time per env step.

Usage: python bench/profile_rollout.py [--steps 300] [--envs-per-worker 8] [--top 15]
"""

import argparse
import cProfile
import os
import pstats
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402

from worldmodels.config import ENVS_PER_WORKER  # noqa: E402
from worldmodels.envs.carracing import make_carracing  # noqa: E402
from worldmodels.models.loading import load_agent  # noqa: E402
from worldmodels.runtime.rollout import run_batch  # noqa: E402

BUNDLE = Path(__file__).resolve().parents[1] / "pretrained" / "carracing-laptop"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--envs-per-worker", type=int, default=ENVS_PER_WORKER)
    p.add_argument("--top", type=int, default=15)
    a = p.parse_args()
    agent = load_agent(BUNDLE, "carracing")
    params = np.load(BUNDLE / "controller" / "best.npz")["params"]
    envs = [make_carracing(max_steps=a.steps, fast=True) for _ in range(a.envs_per_worker)]
    tasks = [(params, 2_000_000_000 + i, a.steps, 0) for i in range(a.envs_per_worker)]
    prof = cProfile.Profile()
    prof.enable()
    steps = sum(s for _, s in run_batch(envs, agent, tasks))
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    print(
        f"{steps} env steps ({a.envs_per_worker} episodes in lockstep) in {total:.2f} s of profiled time "
        f"({1000 * total / steps:.2f} ms per env step under the profiler)"
    )
    print(f"{'own ms/step':>11} {'share':>6}  function")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[: a.top]
    for (file, line, fn), (_, _, tt, _, _) in rows:
        print(f"{1000 * tt / steps:11.3f} {tt / total:6.1%}  {Path(file).name}:{line} {fn}")


if __name__ == "__main__":
    main()
