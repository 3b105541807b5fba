#!/usr/bin/env python
"""Bench (issue 4): dream steps/s, the whole population as one batch through M vs one episode at a
time, on the doom laptop preset's shapes (z 64, LSTM 256, [z c h] controller), random weights.

Usage: python bench/dream_steps.py [--episodes 256] [--steps 100] [--repeats 3]
"""

import argparse
import statistics
import time

import numpy as np  # noqa: E402

from worldmodels.envs.doom import map_actions  # noqa: E402
from worldmodels.models import controller as ctrl  # noqa: E402
from worldmodels.models.dream import dream_rollouts  # noqa: E402
from worldmodels.models.numpy_agent import NumpyMDNRNN  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--episodes", type=int, default=256, help="population x trials (laptop doom: 32 x 8)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--single", type=int, default=16, help="episodes timed one at a time (then scaled)")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    z, units, k = 64, 256, 5
    w = {
        "lstm_kernel": rng.normal(scale=0.1, size=(z + 1, 4 * units)),
        "lstm_bias": np.zeros(4 * units),
        "lstm_recurrent": rng.normal(scale=0.1, size=(units, 4 * units)),
        "mdn_w": rng.normal(scale=0.1, size=(units, 3 * z * k)),
        "mdn_b": np.zeros(3 * z * k),
        "reward_w": np.zeros((units, 1)),
        "reward_b": np.ones(1),
        "done_w": np.zeros((units, 1)),
        "done_b": np.full(1, -10.0),
        "num_mixtures": np.int64(k),
    }  # done never fires: full-length episodes
    rnn = NumpyMDNRNN(w)
    n = ctrl.param_count(z, units, 1, "zch")
    params = rng.normal(scale=0.1, size=(a.episodes, n)).astype(np.float32)
    mu = rng.normal(size=(a.episodes, z)).astype(np.float32)
    lv = np.zeros_like(mu)
    seeds = list(range(a.episodes))
    batched, single = [], []
    for r in range(a.repeats):
        t = time.perf_counter()
        dream_rollouts(rnn, params, "zch", 1, map_actions, mu, lv, seeds, 1.15, a.steps)
        batched.append(a.episodes * a.steps / (time.perf_counter() - t))
        t = time.perf_counter()
        for i in range(a.single):
            dream_rollouts(
                rnn,
                params[i : i + 1],
                "zch",
                1,
                map_actions,
                mu[i : i + 1],
                lv[i : i + 1],
                seeds[i : i + 1],
                1.15,
                a.steps,
            )
        single.append(a.single * a.steps / (time.perf_counter() - t))
        print(f"repeat {r}: batched {batched[-1]:.0f} episode-steps/s, one at a time {single[-1]:.0f}")
    mb, ms = statistics.median(batched), statistics.median(single)
    print(
        f"median: batched {mb:.0f} episode-steps/s ({a.episodes} episodes), one at a time {ms:.0f}; "
        f"ratio {mb / ms:.1f}x"
    )


if __name__ == "__main__":
    main()
