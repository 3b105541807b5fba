"""Does the dream reward what the real game rewards? Score fixed policies both ways.

Example:  python -m worldmodels.diagnose_dream --env doom --data-dir data/doom
Reads:    <data-dir>/memory (M and its calibrated done bias), series (the dream's start frames)

Each constant action (doom: always left, stay, always right; carracing: gas straight, brake, coast)
is run for --dream-episodes episodes in M's dream at each --temperatures and for --real-episodes
episodes of the real env (held-out seeds). A policy the dream scores far above the real game is a
flaw of M that a dream-trained controller will find and exploit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from worldmodels.io.seeding import eval_seeds

CONSTANT_ACTIONS = {
    "doom": {"always left": [-1.0], "stay": [0.0], "always right": [1.0]},
    "carracing": {"gas straight": [0.0, 1.0, 0.0], "coast": [0.0, 0.0, 0.0], "brake": [0.0, 0.0, 0.8]},
}


def dream_survival(data_dir: Path, action: np.ndarray, episodes: int, temperature: float, max_steps: int):
    """(total reward [N], steps [N]) of a constant action in M's dream."""
    from worldmodels.models.dream import dream_rollouts
    from worldmodels.models.loading import load_dream_starts, load_rnn, read_config
    from worldmodels.models.memory.calibration import memory_done_bias
    from worldmodels.models.numpy_agent import NumpyMDNRNN

    mem = read_config(data_dir, "memory")
    rnn = NumpyMDNRNN(load_rnn(data_dir, mem))
    mu, lv = load_dream_starts(data_dir, mem)  # only the first frames, not the whole series
    idx = np.arange(episodes) % len(mu)
    z_size = mu.shape[1]
    # A controller on [z] with zero weights and bias = the action; the identity maps it unchanged.
    a = np.asarray(action, np.float32)
    params = np.concatenate([np.zeros((episodes, z_size * len(a)), np.float32), np.tile(a, (episodes, 1))], 1)
    return dream_rollouts(
        rnn,
        params,
        "z",
        len(a),
        lambda x: x,
        mu[idx],
        lv[idx],
        list(range(episodes)),
        temperature,
        max_steps,
        memory_done_bias(mem),
    )


def real_survival(env_name: str, action: np.ndarray, episodes: int, max_steps: int):
    from worldmodels.envs import make_env

    env = make_env(env_name, max_steps=max_steps, fast=True)
    totals, steps = [], []
    try:
        for s in eval_seeds(episodes):
            env.reset(seed=s)
            total, n, done = 0.0, 0, False
            while not done:
                _, r, term, trunc, _ = env.step(np.asarray(action, np.float32))
                total, n, done = total + float(r), n + 1, term or trunc
            totals.append(total)
            steps.append(n)
    finally:
        env.close()
    return np.array(totals), np.array(steps)


def build_parser():
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 1.15], help="dream temperatures")
        p.add_argument("--dream-episodes", type=int, default=200, help="dream episodes per policy and temperature")
        p.add_argument("--real-episodes", type=int, default=20, help="real episodes per policy")

    return build_cli_parser(
        __doc__,
        run_flags=("env", "preset", "data_dir"),
        scoring_flags=("max_steps",),
        env_default="doom",
        extra=extra,
        prog="worldmodels diagnose-dream",
    )


def main(argv: list[str] | None = None) -> int:
    from worldmodels.cli import parse_tool, report_errors, require

    p = build_parser()
    run, a = parse_tool(p, argv)
    require(p, "--dream-episodes", a.dream_episodes, "positive")
    require(p, "--real-episodes", a.real_episodes, "positive")
    for t in a.temperatures:
        require(p, "--temperatures", t, ">= 0")
    data_dir, max_steps = run.data_dir, a.max_steps
    a.env = run.env

    def body():
        print(f"| policy | {' | '.join(f'dream tau {t:g}' for t in a.temperatures)} | real game |")
        print("|---|" + "---|" * (len(a.temperatures) + 1))
        for name, action in CONSTANT_ACTIONS[a.env].items():
            cells = []
            for t in a.temperatures:
                total, _ = dream_survival(data_dir, np.array(action), a.dream_episodes, t, max_steps)
                cells.append(f"{total.mean():.0f} ± {total.std():.0f}")
            total, _ = real_survival(a.env, np.array(action), a.real_episodes, max_steps)
            cells.append(f"{total.mean():.0f} ± {total.std():.0f}")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
