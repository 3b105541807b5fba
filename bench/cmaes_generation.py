#!/usr/bin/env python
"""Bench (issue 3, closing figure): wall time of one laptop-preset CMA-ES generation in the real
CarRacing env, stock renderer vs the fast one, through stage 5's own worker pool and numpy agent.

A generation is the laptop preset's population x trials episodes (16 x 3, max 1000 steps, patience
50), candidates drawn around a trained controller (so they drive like a mid-run population, not
like random weights that leave the track at once). Needs a trained V and M: the data dir of a
laptop run (`make run`), or any run's data dir with --data-dir.

Usage: python bench/cmaes_generation.py [--data-dir data/carracing] [--workers 2] [--repeats 2]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402

from worldmodels.config import make_stage_config  # noqa: E402
from worldmodels.io.artifacts import Paths, read_json  # noqa: E402
from worldmodels.io.seeding import train_seed  # noqa: E402
from worldmodels.runtime.pool import TaskPool  # noqa: E402
from worldmodels.runtime.rollout import evaluate_task, init_worker  # noqa: E402


def generation_seconds(paths: Paths, inputs: str, tasks: list, fast: bool, workers: int) -> tuple[float, int]:
    init_args = ("carracing", str(paths.vision), str(paths.memory), inputs, fast)
    with TaskPool(workers, init_worker, init_args) as pool:
        pool.map(evaluate_task, tasks[:workers], desc=None)  # warm the workers (imports, env build)
        t = time.perf_counter()
        results = pool.map(evaluate_task, tasks, desc=None)
        return time.perf_counter() - t, sum(s for _, s in results)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", type=Path, default=Path("data/carracing"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    paths = Paths(a.data_dir)
    best = a.data_dir / "controller" / "best.npz"
    if not best.exists():
        sys.exit(f"error: {best} not found; train a controller first: make run (or pass --data-dir)")
    cfg = make_stage_config("controller", "carracing", "laptop")
    inputs = read_json(a.data_dir / "controller" / "config.json", "controller")["inputs"]
    center = np.load(best)["params"].astype(np.float32)
    rng = np.random.default_rng(0)
    cands = [center + rng.normal(0, cfg.sigma0, center.shape).astype(np.float32) for _ in range(cfg.population)]
    seeds = [train_seed(0, 5, 0, t) for t in range(cfg.trials)]
    tasks = [(c, s, cfg.max_steps, cfg.patience) for c in cands for s in seeds]
    print(f"one generation: {cfg.population} candidates x {cfg.trials} trials, {a.workers} workers, numpy agent")
    res: dict[str, list[float]] = {"stock": [], "fast": []}
    for r in range(a.repeats):
        for name, fast in (("stock", False), ("fast", True)):
            secs, steps = generation_seconds(paths, inputs, tasks, fast, a.workers)
            res[name].append(secs)
            print(f"repeat {r}: {name:5s} {secs:7.1f} s  ({steps} env steps, {steps / secs:.0f} steps/s)")
    med = {k: statistics.median(v) for k, v in res.items()}
    print(
        f"median seconds per generation: stock {med['stock']:.1f}, fast {med['fast']:.1f}; "
        f"speed-up {med['stock'] / med['fast']:.2f}x"
    )


if __name__ == "__main__":
    main()
