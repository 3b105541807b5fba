#!/usr/bin/env python
"""Bench (issue 17): wall time of one laptop-preset CMA-ES generation in the real CarRacing env,
through stage 5's own worker pool and numpy agent, three ways, run alternately in one process so
machine noise hits all alike:
- per-episode, as the issue found it: one episode at a time (K = 1), the road drawn by gfxdraw call
  by call (`fast_carracing.RASTER = False` in those workers);
- per-episode with today's renderer (the compiled raster, same pixels), K = 1;
- batched: vector rollouts (each worker steps K episodes in lockstep, one agent call per step) with
  today's renderer.
Also checks that all three give the same returns, episode for episode.

A generation is the laptop preset's population x trials episodes (16 x 3, max 1000 steps, patience
50) on the fast renderer, candidates drawn around a trained controller (so they drive like a mid-run
population, not like random weights that leave the track at once). Needs a trained V, M and C: the
shipped pretrained/carracing-laptop (default), or a run's data dir.

Usage: python bench/cmaes_generation.py [--data-dir pretrained/carracing-laptop] [--workers 2]
                                        [--envs-per-worker 8] [--repeats 3] [--stock] [--early]
The last line: `batched/per-episode generation speed-up: X.XXx`: batched today against per-episode
as the issue found it (median of the repeats' ratios); the line before splits it into the
renderer's part and the batching's part.
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


def init_gfxdraw_worker(*args) -> None:
    """A worker that draws the road as the issue found it: gfxdraw, one call per polygon."""
    from worldmodels.envs import fast_carracing

    fast_carracing.RASTER = False
    init_worker(*args)


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
        f"per-episode as filed (K=1, gfxdraw), per-episode (K=1) and batched (K={a.envs_per_worker}), alternately"
    )
    init_args = ("carracing", str(paths.vision), str(paths.memory), inputs, not a.stock)
    k = a.envs_per_worker
    arms = ("per-episode as filed", "per-episode", "batched")
    secs: dict[str, list[float]] = {arm: [] for arm in arms}
    with (
        TaskPool(a.workers, init_gfxdraw_worker, init_args) as old,
        TaskPool(a.workers, init_worker, init_args) as pool,
    ):
        for p_, k_ in ((old, 1), (pool, k)):
            map_episodes(p_, tasks[: 2 * a.workers], k_)  # warm the workers: imports, envs, compiled code
        for r in range(a.repeats):
            runs = {arm: generation(p_, tasks, k_) for arm, (p_, k_) in zip(arms, ((old, 1), (pool, 1), (pool, k)))}
            returns = [res for _, res in runs.values()]
            if any(res != returns[0] for res in returns):
                sys.exit("error: the three runners' returns differ")
            steps = sum(s for _, s in returns[0])
            for arm in arms:
                secs[arm].append(runs[arm][0])
            print(
                f"repeat {r}: "
                + ", ".join(f"{arm} {runs[arm][0]:6.1f} s ({steps / runs[arm][0]:.0f} steps/s)" for arm in arms)
                + f"; {steps} env steps, same returns"
            )
    med = {arm: statistics.median(secs[arm]) for arm in arms}
    ratio = statistics.median([f / b for f, b in zip(secs["per-episode as filed"], secs["batched"])])
    print("median seconds per generation: " + ", ".join(f"{arm} {med[arm]:.1f}" for arm in arms))
    print(
        f"renderer alone (K=1): {med['per-episode as filed'] / med['per-episode']:.2f}x; "
        f"batching alone (K={k} vs K=1, today's renderer): {med['per-episode'] / med['batched']:.2f}x"
    )
    print(f"batched/per-episode generation speed-up: {ratio:.2f}x")


if __name__ == "__main__":
    main()
