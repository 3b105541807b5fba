#!/usr/bin/env python
"""Bench (issue 3, what bounds the targets): cProfile of the numpy agent driving the fast env, the
top functions by own time. Laptop-preset shapes (z 32, LSTM 256), random weights.

Usage: python bench/profile_rollout.py [--steps 1000] [--top 15]
"""

import argparse
import cProfile
import os
import pstats
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from worldmodels.envs.carracing import make_carracing, map_actions  # noqa: E402
from worldmodels.models import controller as ctrl  # noqa: E402
from worldmodels.models.numpy_agent import Agent, NumpyEncoder, NumpyMDNRNN  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--top", type=int, default=15)
    a = p.parse_args()
    from worldmodels.models.memory.mdnrnn import build_mdnrnn, export_rnn
    from worldmodels.models.vae import build_vae, export_encoder

    params = np.random.default_rng(0).normal(scale=0.1, size=ctrl.param_count(32, 256, 3)).astype(np.float32)
    agent = Agent(
        NumpyEncoder(export_encoder(build_vae(32, 0.5))),
        NumpyMDNRNN(export_rnn(build_mdnrnn(32, 3, 256, 5))),
        params,
        "zh",
        map_actions,
        3,
    )
    env = make_carracing(max_steps=a.steps + 1, fast=True)
    obs, _ = env.reset(seed=0)
    agent.reset(1)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(a.steps):
        obs, *_ = env.step(agent.act(obs[None])[0])
    prof.disable()
    stats = pstats.Stats(prof)
    total = stats.total_tt
    print(f"{a.steps} steps in {total:.2f} s of profiled time ({a.steps / total:.0f} steps/s under the profiler)")
    print(f"{'own ms/step':>11} {'share':>6}  function")
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[: a.top]
    for (file, line, fn), (_, _, tt, _, _) in rows:
        print(f"{1000 * tt / a.steps:11.3f} {tt / total:6.1%}  {Path(file).name}:{line} {fn}")


if __name__ == "__main__":
    main()
