#!/usr/bin/env python
"""Bench (issues 3b, 17): agent steps/s on the fast CarRacing env, one process, against the bare env
(the same actions replayed, no agent): the numpy agent (V, M, C) one episode at a time (K = 1), and
K episodes stepped in lockstep with one agent call per step (`runtime.rollout.run_batch`, the
runner of stage 5, evaluate and collect). Laptop-preset shapes (z 32, LSTM 256), random weights:
speed does not depend on them. Runs alternate within each repeat, so machine noise hits all alike.

Usage: python bench/agent_steps.py [--steps 500] [--repeats 3] [--envs-per-worker 8]
The last line: `batched agent / bare env: X.XX` (target: at least 0.9).
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402

from worldmodels.config import ENVS_PER_WORKER  # noqa: E402
from worldmodels.envs.carracing import make_carracing, map_actions  # noqa: E402
from worldmodels.models import controller as ctrl  # noqa: E402
from worldmodels.models.numpy_agent import Agent, NumpyEncoder, NumpyMDNRNN  # noqa: E402
from worldmodels.runtime.rollout import run_batch  # noqa: E402


def random_agent(rng) -> tuple[Agent, np.ndarray]:
    """The laptop preset's agent shapes with random weights (no TensorFlow needed)."""
    enc, chans = {}, [3, 32, 64, 128, 256]
    for i in range(4):
        enc[f"conv{i}_w"] = rng.normal(0, 0.05, (4, 4, chans[i], chans[i + 1]))
        enc[f"conv{i}_b"] = np.zeros(chans[i + 1])
    for head in ("mu", "logvar"):
        enc[f"{head}_w"], enc[f"{head}_b"] = rng.normal(0, 0.02, (1024, 32)), np.zeros(32)
    rnn = {
        "lstm_kernel": rng.normal(0, 0.1, (35, 1024)),
        "lstm_recurrent": rng.normal(0, 0.05, (256, 1024)),
        "lstm_bias": np.zeros(1024),
        "mdn_w": rng.normal(0, 0.05, (256, 480)),
        "mdn_b": np.zeros(480),
        **{f"{h}_w": rng.normal(0, 0.05, (256, 1)) for h in ("reward", "done")},
        **{f"{h}_b": np.zeros(1) for h in ("reward", "done")},
        "num_mixtures": np.array(5),
    }
    params = rng.normal(0, 0.1, ctrl.param_count(32, 256, 3)).astype(np.float32)
    return Agent(NumpyEncoder(enc), NumpyMDNRNN(rnn), params, "zh", map_actions, 3), params


def bare_env(env, actions: list, seed: int) -> float:
    env.reset(seed=seed)
    t = time.perf_counter()
    for a in actions:
        env.step(a)
    return len(actions) / (time.perf_counter() - t)


def with_agent(envs: list, agent: Agent, params: np.ndarray, steps: int, seed: int) -> float:
    """Steps/s of len(envs) episodes of `steps` steps each, in lockstep (patience off)."""
    tasks = [(params, seed + i, steps, 0) for i in range(len(envs))]
    t = time.perf_counter()
    results = run_batch(envs, agent, tasks)
    return sum(s for _, s in results) / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--envs-per-worker", type=int, default=ENVS_PER_WORKER)
    a = p.parse_args()
    k = a.envs_per_worker
    agent, params = random_agent(np.random.default_rng(0))
    envs = [make_carracing(max_steps=a.steps) for _ in range(k)]
    # The bare env replays actions an agent took on the same track (the same frames to draw).
    probe = Agent(agent.encoder, agent.rnn, params, "zh", map_actions, 3)
    res: dict[str, list[float]] = {"bare env": [], "agent K=1": [], f"agent K={k}": []}
    for r in range(a.repeats):
        obs, _ = envs[0].reset(seed=r)
        actions = []
        for _ in range(a.steps):
            actions.append(probe.act(obs[None])[0])
            obs, *_ = envs[0].step(actions[-1])
        res["bare env"].append(bare_env(envs[0], actions, r))
        res["agent K=1"].append(with_agent(envs[:1], agent, params, a.steps, r))
        res[f"agent K={k}"].append(with_agent(envs, agent, params, a.steps, r))
        print(f"repeat {r}: " + "   ".join(f"{name} {v[-1]:.1f} steps/s" for name, v in res.items()))
    med = {name: statistics.median(v) for name, v in res.items()}
    print("median steps/s: " + ", ".join(f"{name} {v:.1f}" for name, v in med.items()))
    print(f"per-episode agent / bare env: {med['agent K=1'] / med['bare env']:.2f}")
    print(f"batched agent / bare env: {med[f'agent K={k}'] / med['bare env']:.2f}")


if __name__ == "__main__":
    main()
