#!/usr/bin/env python
"""Bench (issue 3b): agent steps/s on the fast env: a per-step Keras loop (encoder + LSTM cell
called through Keras every step) vs ours (numpy V, M, C), and the bare env with no agent.
Laptop-preset shapes (z 32, LSTM 256); random weights: speed does not depend on them.

Usage: python bench/agent_steps.py [--steps 500] [--repeats 3]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from worldmodels.envs.carracing import make_carracing, map_actions  # noqa: E402
from worldmodels.models import controller as ctrl  # noqa: E402
from worldmodels.models.numpy_agent import Agent, NumpyEncoder, NumpyMDNRNN  # noqa: E402


def run(env, act, steps: int, seed: int, log: list | None = None) -> float:
    obs, _ = env.reset(seed=seed)
    t = time.perf_counter()
    for _ in range(steps):
        action = act(obs)
        if log is not None:
            log.append(action)
        obs, *_ = env.step(action)
    return steps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    import tensorflow as tf

    from worldmodels.models.memory.mdnrnn import build_mdnrnn, export_rnn
    from worldmodels.models.vae import build_vae, export_encoder

    vae = build_vae(32, 0.5)
    rnn = build_mdnrnn(32, 3, 256, 5)
    params = np.random.default_rng(0).normal(scale=0.1, size=ctrl.param_count(32, 256, 3)).astype(np.float32)
    W, b = ctrl.unflatten(params, 288, 3)
    env = make_carracing(max_steps=a.steps + 1)

    cell = rnn.lstm.cell
    state = [tf.zeros((1, 256)), tf.zeros((1, 256))]

    def keras_act(obs):
        nonlocal state
        mu, _ = vae.encode(tf.constant(obs[None], tf.float32) / 255.0)
        x = np.concatenate([mu.numpy(), state[0].numpy()], 1)
        action = map_actions(x @ W + b)
        _, state = cell(tf.concat([mu, tf.constant(action)], 1), state)
        return action[0]

    agent = Agent(NumpyEncoder(export_encoder(vae)), NumpyMDNRNN(export_rnn(rnn)), params, "zh", map_actions, 3)
    agent.reset(1)

    res = {"bare env": [], "keras per step": [], "numpy agent": []}
    for r in range(a.repeats):
        # The bare env replays the numpy agent's actions: the same track, the same frames to draw.
        actions: list = []
        agent.reset(1)
        res["numpy agent"].append(run(env, lambda o: agent.act(o[None])[0], a.steps, r, actions))
        replay = iter(actions)
        res["bare env"].append(run(env, lambda o, it=replay: next(it), a.steps, r))
        state = [tf.zeros((1, 256)), tf.zeros((1, 256))]
        res["keras per step"].append(run(env, keras_act, a.steps, r))
        print(f"repeat {r}: " + "   ".join(f"{k} {v[-1]:.1f}" for k, v in res.items()))
    med = {k: statistics.median(v) for k, v in res.items()}
    print("median steps/s: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
    print(
        f"numpy agent / bare env = {med['numpy agent'] / med['bare env']:.2f}; "
        f"numpy agent / keras per step = {med['numpy agent'] / med['keras per step']:.2f}x"
    )


if __name__ == "__main__":
    main()
