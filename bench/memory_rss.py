#!/usr/bin/env python
"""Bench (issue 6): peak RSS of stages 2, 3 and 4 on 1x and 10x the rollouts. Streaming stages
should stay flat: the target is 10x data within 1.3x the peak memory.

Each stage runs in a fresh process (the real script) and reports its own peak RSS (ru_maxrss).
Synthetic rollouts (smooth frames, 200 steps each): 1x = --episodes, 10x = 10 * --episodes.

Usage: python bench/memory_rss.py [--episodes 20]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from worldmodels.io.data import save_rollout  # noqa: E402

STAGES = {
    "02_train_vae.py": ["--epochs", "1", "--z-size", "32", "--batch-size", "100", "--shuffle-buffer", "2000"],
    "03_generate_rnn_data.py": ["--batch-size", "200"],
    "04_train_rnn.py": [
        "--rnn-size",
        "256",
        "--num-mixtures",
        "5",
        "--seq-len",
        "100",
        "--batch-size",
        "32",
        "--steps",
        "30",
        "--steps-per-epoch",
        "10",
    ],
}


def make_rollouts(root: Path, episodes: int, T: int = 200) -> None:
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 64, dtype=np.float32)
    for i in range(episodes):
        phase = rng.uniform(0, 6.28, size=T)
        obs = 127 + 120 * np.sin(phase[:, None, None, None] + 8 * x[None, :, None, None] + x[None, None, :, None])
        obs = np.broadcast_to(obs, (T, 64, 64, 3)).astype(np.uint8)
        action = rng.uniform(-1, 1, (T, 3)).astype(np.float32)
        term, trunc = np.zeros(T, bool), np.zeros(T, bool)
        trunc[-1] = True
        save_rollout(
            root / "rollouts" / f"s0_e{i:06d}.npz", obs, action, rng.normal(size=T).astype(np.float32), term, trunc
        )


def peak_rss(script: str, data: Path, extra: list[str], preset: str = "tiny", workers: int = 1) -> tuple[float, float]:
    """Run a stage script; (its own peak RSS, the largest peak RSS of the processes it started) in MB."""
    code = (
        "import resource, runpy, sys\nsys.argv = sys.argv[1:]\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "finally:\n    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)"
    )
    cmd = [sys.executable, "-c", code, script, "--preset", preset, "--data-dir", str(data), "--workers", str(workers)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "SDL_VIDEODRIVER": "dummy"}
    p = subprocess.run([*cmd, *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("PEAK_RSS_KB")]
    if p.returncode != 0 or not line:
        raise SystemExit(f"{script} failed:\n{p.stderr[-3000:]}")
    own, children = line[-1].split()[1:]
    return int(own) / 1024, int(children) / 1024


def peak_rss_mb(script: str, data: Path, extra: list[str]) -> float:
    return peak_rss(script, data, extra)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--episodes", type=int, default=20)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        results = {}
        for scale in (1, 10):
            data = Path(d) / f"x{scale}"
            make_rollouts(data, a.episodes * scale)
            results[scale] = {s: peak_rss_mb(s, data, extra) for s, extra in STAGES.items()}
        for s in STAGES:
            one, ten = results[1][s], results[10][s]
            print(
                f"{s:26s} peak RSS 1x ({a.episodes} episodes) {one:7.0f} MB   10x {ten:7.0f} MB   "
                f"ratio {ten / one:.2f} (target <= 1.3)"
            )
    _ = resource


if __name__ == "__main__":
    main()
