#!/usr/bin/env python
"""Bench (issue 17): wall time of one laptop-preset CMA-ES generation in the real CarRacing env,
through stage 5's own worker pool and numpy agent: today's one-episode-at-a-time runner (K = 1)
against vector rollouts (each worker steps K episodes in lockstep, one agent call per step), run
alternately in one process so machine noise hits both alike. Also checks that both give the same
returns, episode for episode.

A generation is the laptop preset's population x trials episodes (16 x 3, max 1000 steps, patience
50) on the fast renderer, candidates drawn around a trained controller (so they drive like a mid-run
population, not like random weights that leave the track at once). Needs a trained V, M and C: the
shipped pretrained/carracing-laptop (default), or a run's data dir.

Usage: python bench/cmaes_generation.py [--data-dir pretrained/carracing-laptop] [--workers 2]
                                        [--envs-per-worker 8] [--repeats 3] [--stock] [--early]
The last line: `batched/per-episode generation speed-up: X.XXx` (median of the repeats' ratios).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402

from worldmodels.config import ENVS_PER_WORKER, make_stage_config  # noqa: E402
from worldmodels.io.artifacts import Paths, read_json  # noqa: E402
from worldmodels.io.seeding import train_seed  # noqa: E402
from worldmodels.runtime.pool import TaskPool  # noqa: E402
from worldmodels.runtime.rollout import init_worker, map_episodes  # noqa: E402


def generation(pool: TaskPool, tasks: list, k: int) -> tuple[float, list]:
    t = time.perf_counter()
    results = map_episodes(pool, tasks, k)
    return time.perf_counter() - t, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=Path("pretrained/carracing-laptop"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--envs-per-worker", type=int, default=ENVS_PER_WORKER)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--stock", action="store_true", help="the stock renderer instead of the fast one")
    p.add_argument(
        "--early",
        action="store_true",
        help="candidates around zero, as in generation 1 (short episodes of very unequal length), not around "
        "the trained controller",
    )
    a = p.parse_args()
    paths = Paths(a.data_dir)
    best = a.data_dir / "controller" / "best.npz"
    if not best.exists():
        sys.exit(f"error: {best} not found; train a controller first: make run (or pass --data-dir)")
    cfg = make_stage_config("controller", "carracing", "laptop")
    inputs = read_json(a.data_dir / "controller" / "config.json", "controller")["inputs"]
    center = np.load(best)["params"].astype(np.float32)
    if a.early:
        center = np.zeros_like(center)
    rng = np.random.default_rng(0)
    cands = [center + rng.normal(0, cfg.sigma0, center.shape).astype(np.float32) for _ in range(cfg.population)]
    seeds = [train_seed(0, 5, 0, t) for t in range(cfg.trials)]
    tasks = [(c, s, cfg.max_steps, cfg.patience) for c in cands for s in seeds]
    renderer = "stock" if a.stock else "fast"
    print(
        f"one generation: {cfg.population} candidates x {cfg.trials} trials "
        f"({'around zero, as generation 1' if a.early else 'around the trained controller'}), {a.workers} workers, "
        f"{renderer} renderer; "
        f"per-episode (K=1) vs batched (K={a.envs_per_worker}), alternately"
    )
    init_args = ("carracing", str(paths.vision), str(paths.memory), inputs, not a.stock)
    secs: dict[int, list[float]] = {1: [], a.envs_per_worker: []}
    ratios = []
    with TaskPool(a.workers, init_worker, init_args) as pool:
        map_episodes(pool, tasks[: 2 * a.workers], a.envs_per_worker)  # warm the workers: imports, envs
        for r in range(a.repeats):
            (t1, one), (tk, batched) = (generation(pool, tasks, k) for k in (1, a.envs_per_worker))
            if batched != one:
                sys.exit("error: the batched runner's returns differ from the per-episode runner's")
            steps = sum(s for _, s in one)
            secs[1].append(t1)
            secs[a.envs_per_worker].append(tk)
            ratios.append(t1 / tk)
            print(
                f"repeat {r}: per-episode {t1:6.1f} s, batched {tk:6.1f} s ({steps} env steps: "
                f"{steps / t1:.0f} vs {steps / tk:.0f} steps/s), same returns"
            )
    print(
        f"median seconds per generation: per-episode {statistics.median(secs[1]):.1f}, "
        f"batched {statistics.median(secs[a.envs_per_worker]):.1f}"
    )
    print(f"batched/per-episode generation speed-up: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
