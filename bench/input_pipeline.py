#!/usr/bin/env python
"""Bench (issue 20): can stage 2's and stage 4's input pipelines keep a GPU busy?

Stage 2: the frames/s stage 2's streaming loader (`shuffled_batches`: decompress each rollout,
shuffle through a bounded buffer, batch) delivers from rollouts/, pinned to one core with no
read-ahead thread, and on every core with the stage's read-ahead threads; beside it the
frame-by-frame reference (the loader until 2026-11-30, same batches) and V's own training step on
this CPU at the paper's shapes. Target: the loader alone >= 10,000 frames/s per core (V's paper
training needs 30,000 frames/s on a GPU box to finish an epoch of 10 million frames in under 6
minutes; such a box has 8 or more cores).

Stage 4: the sequences/s stage 4's sampler (`SeriesSampler`: random windows read from series.h5 per
batch) delivers at the paper's sequence lengths (CarRacing 999 steps, z 32; Doom 500, z 64), beside
M's training step on this CPU at the paper's shapes (LSTM 256 / 512, batch 100).

Data: --rollouts DIR (default data/carracing/rollouts when it exists, else synthetic CarRacing-like
frames that compress about as well); the series are synthetic, laid out as stage 3 writes them.
Prints medians of --repeats; the last lines are the per-core figures against the target.

Usage: python bench/input_pipeline.py [--rollouts DIR] [--repeats 3]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from worldmodels.io.data import (  # noqa: E402
    LOADER_THREADS,
    SeriesSampler,
    load_rollout,
    open_series,
    prefetch,
    reference_shuffled_batches,
    rollout_files,
    save_rollout,
    shuffled_batches,
    write_series,
)

TARGET_PER_CORE = 10_000


def synthetic_rollouts(root: Path, episodes: int = 24, T: int = 500) -> list[Path]:
    """CarRacing-like frames: striped grass, a grey road that bends, red/white kerbs, a red car."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    paths = []
    for e in range(episodes):
        phase = rng.uniform(0, 6.28)
        obs = np.empty((T, 64, 64, 3), np.uint8)
        for t in range(T):
            grass = np.where(((xx + t) // 4 + (yy + t // 2) // 4) % 2 == 0, 204, 229)
            frame = np.stack([np.full_like(grass, 102), grass, np.full_like(grass, 102)], -1)
            centre = 32 + 14 * np.sin(phase + 0.05 * t + yy / 20.0)
            road = np.abs(xx - centre) < 10
            frame[road] = (105, 105, 105)
            kerb = (np.abs(np.abs(xx - centre) - 10) < 1) & ((yy // 3) % 2 == 0)
            frame[kerb] = (255, 0, 0)
            frame[44:50, 30:34] = (204, 0, 0)
            obs[t] = frame
        action = rng.uniform(-1, 1, (T, 3)).astype(np.float32)
        term, trunc = np.zeros(T, bool), np.zeros(T, bool)
        trunc[-1] = True
        path = root / "rollouts" / f"s0_e{e:06d}.npz"
        save_rollout(path, obs, action, rng.normal(size=T).astype(np.float32), term, trunc)
        paths.append(path)
    return paths


def synthetic_series(root: Path, z: int, lengths: list[int], action_dim: int) -> Path:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, T in enumerate(lengths):
        part = root / f"part{i}.npz"
        terminated = np.zeros(T, bool)
        terminated[-1] = True
        np.savez(
            part,
            mu=rng.normal(size=(T, z)).astype(np.float32),
            logvar=rng.normal(-2, 0.1, size=(T, z)).astype(np.float32),
            action=rng.uniform(-1, 1, (T, action_dim)).astype(np.float32),
            reward=rng.normal(size=T).astype(np.float32),
            terminated=terminated,
        )
        parts.append(part)
    path = root / "series.h5"
    write_series(path, parts, {"fingerprint": "bench"})
    return path


def frames_per_s(batches) -> float:
    t, n = time.perf_counter(), 0
    for b in batches:
        n += len(b)
    return n / (time.perf_counter() - t)


def one_core(fn, *args, **kwargs):
    """fn(*args, **kwargs) pinned to one core (where the OS allows it)."""
    if not hasattr(os, "sched_setaffinity"):
        return fn(*args, **kwargs)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        return fn(*args, **kwargs)
    finally:
        os.sched_setaffinity(0, before)


def bench_stage2(files: list[Path], repeats: int) -> float:
    from worldmodels.config import make_stage_config

    cfg = make_stage_config("vision", "carracing", "paper")
    B, buf = cfg.batch_size, cfg.shuffle_buffer
    n_frames = sum(len(load_rollout(f, ("obs",))["obs"]) for f in files)
    size = sum(f.stat().st_size for f in files) / n_frames
    print(f"stage 2 loader: {len(files)} rollouts, {n_frames} frames, {size:.0f} bytes/frame on disk")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    label_all = f"shuffled_batches, {cores} cores, {LOADER_THREADS} read-ahead threads"
    rows = {k: [] for k in ("reference (frame by frame), 1 core", "shuffled_batches, 1 core", label_all)}
    for r in range(repeats):  # alternately, so machine noise falls on all alike
        ref = one_core(frames_per_s, reference_shuffled_batches(files, B, buf, 0, r))
        rows["reference (frame by frame), 1 core"].append(ref)
        ours = one_core(frames_per_s, shuffled_batches(files, B, buf, 0, r, threads=1))
        rows["shuffled_batches, 1 core"].append(ours)
        rows[label_all].append(frames_per_s(shuffled_batches(files, B, buf, 0, r, threads=LOADER_THREADS)))
    # The hand-off thread: ours (io.data.prefetch) against tf.data's from_generator + prefetch.
    import tensorflow as tf

    def tf_data(r):
        spec = tf.TensorSpec((None, 64, 64, 3), tf.uint8)
        ds = tf.data.Dataset.from_generator(lambda: shuffled_batches(files, B, buf, 0, r), output_signature=spec)
        return ds.prefetch(2).as_numpy_iterator()

    rows["prefetch(shuffled_batches), all cores"] = []
    rows["tf.data from_generator(shuffled_batches).prefetch(2), all cores"] = []
    for r in range(repeats):
        rows["prefetch(shuffled_batches), all cores"].append(
            frames_per_s(prefetch(shuffled_batches(files, B, buf, 0, r)))
        )
        rows["tf.data from_generator(shuffled_batches).prefetch(2), all cores"].append(frames_per_s(tf_data(r)))
    for k, v in rows.items():
        print(f"  {k:62s} {statistics.median(v):9.0f} frames/s   (runs: {', '.join(f'{x:.0f}' for x in v)})")
    import keras

    from worldmodels.models.vae import build_vae

    vae = build_vae(cfg.z_size, cfg.kl_tolerance)
    vae.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
    batch = next(shuffled_batches(files, B, buf, 0, 0, threads=1))
    vae.train_on_batch(batch)  # compile
    t = time.perf_counter()
    for _ in range(5):
        vae.train_on_batch(batch)
    train = 5 * len(batch) / (time.perf_counter() - t)
    per_core = statistics.median(rows["shuffled_batches, 1 core"])
    print(
        f"  V's training step on this CPU (z {cfg.z_size}, batch {B}): {train:.0f} frames/s; "
        f"the loader on one core is {per_core / train:.0f}x that"
    )
    return per_core


def sequences_per_s(sampler, batch_size: int, repeat: int, batches: int = 10) -> float:
    t, n = time.perf_counter(), 0
    for i in range(batches):
        n += len(sampler.batch(np.random.default_rng([repeat, i]), batch_size)["mask"])
    return n / (time.perf_counter() - t)


def bench_stage4(root: Path, repeats: int) -> None:
    import keras

    from worldmodels.config import make_stage_config
    from worldmodels.models.memory.mdnrnn import build_mdnrnn

    rng = np.random.default_rng(2)
    for env, z, action_dim, lengths in (
        ("carracing", 32, 3, [1000] * 40),
        ("doom", 64, 1, rng.integers(100, 700, 120).tolist()),
    ):
        m = make_stage_config("memory", env, "paper")
        series = synthetic_series(root / env, z, lengths, action_dim)
        with open_series(series, "bench") as f:
            sampler = SeriesSampler(f, np.arange(len(lengths)), m.seq_len)
            runs = [one_core(sequences_per_s, sampler, m.batch_size, r) for r in range(repeats)]
            loader = statistics.median(runs)
            batch = sampler.batch(np.random.default_rng(0), m.batch_size)
        model = build_mdnrnn(z, action_dim, m.rnn_size, m.num_mixtures)
        model.compile(optimizer=keras.optimizers.Adam(m.learning_rate))
        model.train_on_batch(batch)  # compile
        t = time.perf_counter()
        model.train_on_batch(batch)
        train = m.batch_size / (time.perf_counter() - t)
        print(
            f"stage 4 sampler, {env} (sequence {m.seq_len}, z {z}, batch {m.batch_size}): {loader:.0f} sequences/s "
            f"(runs: {', '.join(f'{x:.0f}' for x in runs)}); M's training step on this CPU (LSTM {m.rnn_size}): "
            f"{train:.1f} sequences/s, the sampler is {loader / train:.0f}x that"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = ROOT / "data" / "carracing" / "rollouts"
    p.add_argument("--rollouts", type=Path, default=default if default.is_dir() else None)
    p.add_argument("--max-files", type=int, default=100, help="rollouts per pass (well past the buffer)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if a.rollouts is not None:
            files = rollout_files(a.rollouts)[: a.max_files]
            print(f"rollouts: {a.rollouts} (first {len(files)})")
        else:
            files = synthetic_rollouts(Path(d))[: a.max_files]
            print("rollouts: synthetic CarRacing-like frames (no data/carracing/rollouts here)")
        per_core = bench_stage2(files, a.repeats)
        bench_stage4(Path(d), a.repeats)
    print(f"stage 2 loader per core: {per_core:.0f} frames/s (target >= {TARGET_PER_CORE})")


if __name__ == "__main__":
    main()
