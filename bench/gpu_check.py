#!/usr/bin/env python
"""GPU check (issue 20): stage 2's and stage 4's training at the paper's shapes for --seconds each,
through the stages' own models, loaders and prefetch, on synthetic data made here (nothing is
downloaded). Prints frames/s (V), sequences/s (M) and peak GPU memory per phase, float32 and
--mixed-precision, then one summary line per phase. Run it through bench/gpu_check.sh on a GPU box
(under 8 minutes); --allow-cpu runs it on a CPU (a smoke test of the script, not a measurement).

Phases: V (ConvVAE, z 32, batch 100) from rollouts/ through `prefetch(shuffled_batches(...))`;
M for CarRacing (LSTM 256, sequences of 999 steps, batch 100) and for Doom (LSTM 512, z 64,
sequences of 500) from series.h5 through `prefetch(SeriesSampler.batch ...)`.

Usage: python bench/gpu_check.py [--seconds 40] [--allow-cpu | --require-gpu] [--out FILE.json]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from input_pipeline import synthetic_rollouts, synthetic_series  # bench/ is on the path of a script run from it

from worldmodels.config import make_stage_config  # noqa: E402
from worldmodels.io.data import LOADER_THREADS, SeriesSampler, open_series, prefetch, shuffled_batches  # noqa: E402


def gpu_memory_peak_mb() -> float | None:
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def reset_gpu_peak() -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")


def timed(step, batches, seconds: float) -> tuple[int, float, int]:
    """Run step(batch) over `batches` for about `seconds` after one untimed (compiling) step:
    (items, seconds, steps)."""
    step(next(batches))
    n, steps, t0 = 0, 0, time.perf_counter()
    for batch in batches:
        step(batch)
        n += len(batch["mask"]) if isinstance(batch, dict) else len(batch)
        steps += 1
        if time.perf_counter() - t0 >= seconds:
            break
    return n, time.perf_counter() - t0, steps


def phase_vision(files, seconds: float, mixed: bool) -> dict:
    import keras

    from worldmodels.stages.train_vae import _build_model

    cfg = make_stage_config("vision", "carracing", "paper", {"mixed_precision": mixed})
    keras.utils.set_random_seed(0)
    vae, _ = _build_model(cfg)

    def epochs():
        for epoch in range(10**6):
            yield from shuffled_batches(files, cfg.batch_size, cfg.shuffle_buffer, 0, epoch)

    reset_gpu_peak()
    batches = prefetch(epochs())
    try:
        n, dt, steps = timed(lambda b: vae.train_on_batch(b), batches, seconds)
    finally:
        batches.close()
    return {"phase": f"V z {cfg.z_size} batch {cfg.batch_size}", "unit": "frames/s", "rate": n / dt, "steps": steps}


def phase_memory(env: str, series: Path, seconds: float, mixed: bool) -> dict:
    import keras

    from worldmodels.stages.train_rnn import _build_model

    cfg = make_stage_config("memory", env, "paper", {"mixed_precision": mixed})
    with open_series(series, "bench") as f:
        sampler = SeriesSampler(f, np.arange(len(f["episode_starts"]) - 1), cfg.seq_len)
        keras.utils.set_random_seed(0)
        model, _ = _build_model(cfg, sampler.z_size, sampler.action_dim, 0)
        reset_gpu_peak()
        batches = prefetch(sampler.batch(np.random.default_rng([0, s]), cfg.batch_size) for s in range(10**9))
        try:
            n, dt, steps = timed(lambda b: model.train_on_batch(b), batches, seconds)
        finally:
            batches.close()
    name = f"M {env} LSTM {cfg.rnn_size} z {sampler.z_size} sequence {cfg.seq_len} batch {cfg.batch_size}"
    return {"phase": name, "unit": "sequences/s", "rate": n / dt, "steps": steps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=40.0, help="timed training per phase")
    p.add_argument("--allow-cpu", action="store_true", help="run without a GPU (checks the script only)")
    p.add_argument("--require-gpu", action="store_true", help="exit 2 when no GPU is visible (else: skip, exit 0)")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    a = p.parse_args()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not a.allow_cpu:
        print("no GPU visible to TensorFlow (check `nvidia-smi` and the CUDA libraries): nothing measured")
        raise SystemExit(2 if a.require_gpu else 0)
    for g in gpus:
        tf.config.experimental.set_memory_growth(g, True)  # so the peak is what the phase needed
    device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"
    print(f"device: {device}; TensorFlow {tf.__version__}; {os.cpu_count()} cores, {LOADER_THREADS} loader threads")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        files = synthetic_rollouts(Path(d), episodes=12, T=1000)
        car = synthetic_series(Path(d) / "car", 32, [1000] * 60, 3)
        doom = synthetic_series(Path(d) / "doom", 64, np.random.default_rng(0).integers(100, 700, 200).tolist(), 1)
        print(f"synthetic data: {time.perf_counter() - t:.0f} s", flush=True)
        for mixed in (False, True):
            for run in (
                lambda: phase_vision(files, a.seconds, mixed),  # noqa: B023 - called at once
                lambda: phase_memory("carracing", car, a.seconds, mixed),  # noqa: B023
                lambda: phase_memory("doom", doom, a.seconds, mixed),  # noqa: B023
            ):
                row = {**run(), "mixed_precision": mixed, "peak_gpu_mb": gpu_memory_peak_mb()}
                rows.append(row)
                peak = "-" if row["peak_gpu_mb"] is None else f"{row['peak_gpu_mb']:.0f} MB"
                print(
                    f"{row['phase']:55s} {'mixed' if mixed else 'float32':7s} {row['rate']:9.1f} {row['unit']:12s} "
                    f"({row['steps']} steps) peak GPU memory {peak}",
                    flush=True,
                )
    if a.out:
        a.out.write_text(json.dumps({"device": device, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
