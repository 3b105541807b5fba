"""Score a saved agent (or the random policy) on held-out episodes of the real environment.

Example:  python -m worldmodels.evaluate --env carracing --episodes 100
          python -m worldmodels.evaluate --env carracing --episodes 100 --policy random
Reads:    <model-dir>/vision, memory, controller (default data/<env>)
Writes:   <model-dir>/evaluate_<policy>.json (or --out), and prints mean +- std

Episodes use seeds S .. S+N-1 with --seed-offset S; by default the held-out range from 2x10^9, which
training never uses (training seeds are below 10^9; stage 5 validates on 2x10^9 + 10^6 on). The stock
gymnasium env is the default; --fast uses the pixel-identical fast renderer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from worldmodels.artifacts import Paths, StageError, read_json, write_json
from worldmodels.parallel import TaskPool
from worldmodels.rollout import evaluate_task, init_random_worker, init_worker, random_policy_task
from worldmodels.seeding import eval_seeds

log = logging.getLogger(__name__)


def evaluate(
    env: str,
    model_dir: Path,
    episodes: int,
    seed_offset: int | None,
    workers: int,
    policy: str,
    fast: bool,
    max_steps: int,
    ray_address: str | None = None,
) -> dict:
    """Score `policy` ('agent' or 'random') on held-out seeds; returns {"mean", "std", "scores", ...}."""
    seeds = eval_seeds(episodes) if seed_offset is None else list(range(seed_offset, seed_offset + episodes))
    t0 = time.time()
    if policy == "random":
        with TaskPool(workers, init_random_worker, (env, fast), ray_address) as pool:
            results = pool.map(random_policy_task, [(s, max_steps) for s in seeds], desc="episodes")
    else:
        paths = Paths(model_dir)
        cfg = read_json(paths.controller / "config.json", "controller")
        if cfg.get("env") != env:
            raise StageError(f"{paths.controller} holds a controller for {cfg.get('env')!r}, not {env!r}")
        with np.load(paths.controller / "best.npz") as z:
            params = z["params"]
        init = (env, str(paths.vision), str(paths.memory), cfg["inputs"], fast)
        with TaskPool(workers, init_worker, init, ray_address) as pool:
            results = pool.map(evaluate_task, [(params, s, max_steps, 0) for s in seeds], desc="episodes")
    scores = np.array([r for r, _ in results])
    return {
        "policy": policy,
        "env": env,
        "episodes": episodes,
        "seeds": [seeds[0], seeds[-1]],
        "stock_env": not fast,
        "max_steps": max_steps,
        "mean": float(scores.mean()),
        "std": float(scores.std()),
        "scores": scores.tolist(),
        "wall_s": time.time() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="carracing", help="environment (default: carracing)")
    p.add_argument(
        "--model-dir", type=Path, default=None, help="data directory holding the agent (default: data/<env>)"
    )
    p.add_argument("--episodes", type=int, default=100, help="number of held-out episodes (default: 100)")
    p.add_argument(
        "--seed-offset",
        type=int,
        default=None,
        help="episodes use seeds S .. S+N-1 (default: the held-out range from 2x10^9, never used in training)",
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    p.add_argument("--policy", choices=("agent", "random"), default="agent", help="the saved agent, or uniform random")
    p.add_argument("--fast", action="store_true", help="use the fast renderer instead of the stock env")
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="steps per episode (default: the benchmark's, 1000 carracing, 2100 doom)",
    )
    p.add_argument("--ray-address", default=None, help="evaluate on Ray ('auto', 'ray://HOST:10001', 'local')")
    p.add_argument("--out", type=Path, default=None, help="JSON output (default: <model-dir>/evaluate_<policy>.json)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.max_steps is None:
        from worldmodels.envs.registry import get_spec

        a.max_steps = get_spec(a.env).benchmark_steps
    if a.episodes <= 0 or a.workers <= 0 or a.max_steps <= 0:
        p.error("--episodes, --workers and --max-steps must be positive")
    if a.seed_offset is not None and not 0 <= a.seed_offset <= 2**32 - 1 - a.episodes:
        p.error(f"--seed-offset must be in [0, 2^32 - episodes], got {a.seed_offset}")
    model_dir = a.model_dir or Path("data") / a.env
    try:
        result = evaluate(
            a.env,
            model_dir,
            a.episodes,
            a.seed_offset,
            a.workers,
            a.policy,
            a.fast,
            a.max_steps,
            a.ray_address or os.environ.get("RAY_ADDRESS") or None,
        )
    except StageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = a.out or model_dir / f"evaluate_{a.policy}.json"
    write_json(out, result)
    print(
        f"{a.policy} on {a.env}: {result['mean']:.1f} +- {result['std']:.1f} over {a.episodes} held-out episodes "
        f"(wrote {out})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
