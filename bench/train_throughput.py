#!/usr/bin/env python
"""Bench (issue 3d): VAE training frames/s and MDN-RNN training steps/s on the laptop preset's
shapes (z 32, batch 100 frames; LSTM 256, 5 mixtures, batch 64 x 100 steps), synthetic data.

Usage: python bench/train_throughput.py [--repeats 3]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batches", type=int, default=10)
    a = p.parse_args()
    import keras

    from worldmodels.config import make_stage_config
    from worldmodels.models.memory.mdnrnn import build_mdnrnn
    from worldmodels.models.vae import build_vae

    v_cfg = make_stage_config("vision", "carracing", "laptop")
    m_cfg = make_stage_config("memory", "carracing", "laptop")
    rng = np.random.default_rng(0)
    vae = build_vae(v_cfg.z_size, v_cfg.kl_tolerance)
    vae.compile(optimizer=keras.optimizers.Adam(v_cfg.learning_rate))
    frames = rng.integers(0, 256, size=(v_cfg.batch_size, 64, 64, 3), dtype=np.uint8)
    rnn = build_mdnrnn(v_cfg.z_size, 3, m_cfg.rnn_size, m_cfg.num_mixtures)
    rnn.compile(optimizer=keras.optimizers.Adam(m_cfg.learning_rate))
    B, L, z = m_cfg.batch_size, m_cfg.seq_len, v_cfg.z_size
    batch = {
        "mu": rng.normal(size=(B, L + 1, z)).astype(np.float32),
        "logvar": np.zeros((B, L + 1, z), np.float32),
        "action": rng.uniform(-1, 1, (B, L, 3)).astype(np.float32),
        "reward": np.zeros((B, L), np.float32),
        "terminated": np.zeros((B, L), np.float32),
        "mask": np.ones((B, L), np.float32),
        "zmask": np.ones((B, L), np.float32),
    }
    for _ in range(2):  # compile
        vae.train_on_batch(frames)
        rnn.train_on_batch(batch)
    vae_fps, rnn_sps = [], []
    for r in range(a.repeats):
        t = time.perf_counter()
        for _ in range(a.batches):
            vae.train_on_batch(frames)
        vae_fps.append(a.batches * len(frames) / (time.perf_counter() - t))
        t = time.perf_counter()
        for _ in range(a.batches):
            rnn.train_on_batch(batch)
        rnn_sps.append(a.batches / (time.perf_counter() - t))
        print(f"repeat {r}: VAE {vae_fps[-1]:.0f} frames/s, MDN-RNN {rnn_sps[-1]:.2f} steps/s")
    print(
        f"median: VAE {statistics.median(vae_fps):.0f} frames/s (batch {v_cfg.batch_size}), "
        f"MDN-RNN {statistics.median(rnn_sps):.2f} steps/s (batch {B} x {L} steps, LSTM {m_cfg.rnn_size})"
    )


if __name__ == "__main__":
    main()
