#!/usr/bin/env python
"""Bench (issue 7): evaluation throughput (episodes/min) with 1 and 2 local workers and with Ray on
2 CPUs, and Ray's overhead per task (a no-op task's round trip), side by side in one run.

Stage 5's own worker function (numpy V, M, C in the fast CarRacing env) at the laptop preset's
shapes (z 32, LSTM 256) with random weights; episodes of --max-steps steps. Ray runs as a private
local instance (`--ray-address local`), the same code path as a cluster minus the network.

Usage: python bench/ray_throughput.py [--episodes 16] [--max-steps 300] [--repeats 3]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread per worker, the inline (1 worker) case included

import numpy as np  # noqa: E402

from worldmodels.models import controller as ctrl  # noqa: E402
from worldmodels.runtime.pool import TaskPool  # noqa: E402
from worldmodels.runtime.rollout import evaluate_task, init_worker  # noqa: E402


def noop(task):
    return task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--episodes", type=int, default=16)
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--noop-tasks", type=int, default=400)
    a = p.parse_args()
    from worldmodels.models.memory.mdnrnn import build_mdnrnn, export_rnn
    from worldmodels.models.vae import build_vae, export_encoder

    tmp = Path(tempfile.mkdtemp())
    (tmp / "vision").mkdir()
    (tmp / "memory").mkdir()
    np.savez(tmp / "vision" / "encoder.npz", **export_encoder(build_vae(32, 0.5)))
    np.savez(tmp / "memory" / "rnn.npz", **export_rnn(build_mdnrnn(32, 3, 256, 5)))
    params = np.random.default_rng(0).normal(0, 0.1, ctrl.param_count(32, 256, 3)).astype(np.float32)
    tasks = [(params, 1000 + i, a.max_steps, 0) for i in range(a.episodes)]
    init = ("carracing", str(tmp / "vision"), str(tmp / "memory"), "zh", True)
    backends = {"local 1 worker": (1, None), "local 2 workers": (2, None), "ray 2 CPUs": (2, "local")}
    rate: dict[str, list[float]] = {k: [] for k in backends}
    overhead: dict[str, list[float]] = {"local 2 workers": [], "ray 2 CPUs": []}
    results = {}
    for r in range(a.repeats):
        for name, (workers, address) in backends.items():
            with TaskPool(workers, init_worker, init, address) as pool:
                pool.map(evaluate_task, tasks[:workers], progress=False)  # warm up: imports, env, weights
                t = time.perf_counter()
                results[name] = pool.map(evaluate_task, tasks, progress=False)
                rate[name].append(a.episodes / (time.perf_counter() - t) * 60)
                if name in overhead:
                    t = time.perf_counter()
                    pool.map(noop, list(range(a.noop_tasks)), progress=False)
                    overhead[name].append((time.perf_counter() - t) / a.noop_tasks * 1e3)
        print(
            f"repeat {r}: "
            + ", ".join(f"{k} {v[-1]:.1f} ep/min" for k, v in rate.items())
            + "; per no-op task: "
            + ", ".join(f"{k} {v[-1]:.2f} ms" for k, v in overhead.items()),
            flush=True,
        )
    assert results["ray 2 CPUs"] == results["local 2 workers"] == results["local 1 worker"], "backends disagree"
    med = {k: statistics.median(v) for k, v in rate.items()}
    steps = sum(s for _, s in results["local 1 worker"]) / a.episodes
    print(
        f"median episodes/min ({a.episodes} episodes, mean {steps:.0f} steps): "
        + ", ".join(f"{k} {v:.1f}" for k, v in med.items())
    )
    print(
        f"ray / local with 2 workers: {med['ray 2 CPUs'] / med['local 2 workers']:.2f}; "
        f"2 local workers / 1: {med['local 2 workers'] / med['local 1 worker']:.2f}x"
    )
    print(
        "median overhead per task (no-op round trip): "
        + ", ".join(f"{k} {statistics.median(v):.2f} ms" for k, v in overhead.items())
    )
    per_core = med["local 1 worker"] * steps / 60
    print(f"per-core agent rate: {per_core:.0f} env steps/s (used for the projection in docs/cluster.md)")


if __name__ == "__main__":
    main()
