"""Stage 4: train M, the MDN-RNN, on windows of the encoded series (teacher forcing).

Writes memory/: checkpoint.npz (every `steps_per_epoch` steps; rerunning resumes), rnn.weights.h5
and rnn.npz (Keras and numpy), config.json, metrics.csv, tensorboard/.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import MemoryConfig, Run
from worldmodels.io.artifacts import (
    Paths,
    StageError,
    arrays_digest,
    atomic_path,
    clean_temporaries,
    fault_point,
    fix_hint,
    write_json,
)
from worldmodels.io.checkpoints import TensorBoard, check_finite, load_checkpoint, save_checkpoint, write_metrics_csv
from worldmodels.io.data import SeriesSampler, open_series
from worldmodels.models.loading import load_vision
from worldmodels.models.memory.calibration import done_calibration
from worldmodels.models.memory.plots import plot_predictions

log = logging.getLogger(__name__)


def train_rnn(args: Run, cfg: MemoryConfig) -> Path:
    """Train (or resume training) the MDN-RNN; returns the memory directory."""
    import keras
    import tensorflow as tf

    from worldmodels.models.memory.mdnrnn import build_mdnrnn, export_rnn

    paths = Paths(args.data_dir)
    out = paths.memory
    vision_cfg, _ = load_vision(args)
    f = open_series(paths.series, fix_hint("series", args))
    try:
        if str(f.attrs.get("vision_fingerprint")) != vision_cfg["fingerprint"]:
            raise StageError(
                f"{paths.series} was encoded by another vision model (fingerprint "
                f"{f.attrs.get('vision_fingerprint')}, vision/ is {vision_cfg['fingerprint']}); "
                f"rerun `{fix_hint('series', args)}`"
            )
        if f["mu"].shape[1] != vision_cfg["z_size"]:
            raise StageError(
                f"{paths.series} has z size {f['mu'].shape[1]} but V has {vision_cfg['z_size']}; "
                f"rerun `{fix_hint('series', args)}`"
            )
        n_ep = len(f["episode_starts"]) - 1
        n_val = max(1, n_ep // 20) if n_ep >= 4 else 0
        train_eps, val_eps = np.arange(n_ep - n_val), np.arange(n_ep - n_val, n_ep)
        sampler = SeriesSampler(f, train_eps, cfg.seq_len)
        z_size, action_dim = sampler.z_size, sampler.action_dim
        series_fp = str(f.attrs["fingerprint"])
        settings = {
            "env": args.env,
            "seed": args.seed,
            "series": series_fp,
            # The next-action knobs enter the settings only when used: older checkpoints still resume.
            **{
                k: v
                for k, v in asdict(cfg).items()
                if k != "steps" and (cfg.predict_action or k not in ("predict_action", "action_weight"))
            },
        }
        ckpt_path = out / "checkpoint.npz"

        keras.utils.set_random_seed(args.seed)
        model = build_mdnrnn(
            z_size,
            action_dim,
            cfg.rnn_size,
            cfg.num_mixtures,
            reward_weight=cfg.reward_weight,
            done_weight=cfg.done_weight,
            done_pos_weight=cfg.done_pos_weight,
            predict_action=cfg.predict_action,
            action_weight=cfg.action_weight,
        )
        optimizer = keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=cfg.grad_clip)
        model.compile(optimizer=optimizer)
        meta = {"step": 0, "history": [], "wall_s": 0.0}
        if ckpt_path.exists():
            meta = load_checkpoint(ckpt_path, model, optimizer, settings, fix_hint("memory", args))
            log.info("resuming from %s at step %d", ckpt_path, meta["step"])
        out.mkdir(parents=True, exist_ok=True)
        clean_temporaries(out)
        tb = TensorBoard(out / "tensorboard")
        val_batch = None
        if n_val:
            val_batch = SeriesSampler(f, val_eps, cfg.seq_len).batch(
                np.random.default_rng([args.seed, 999]), cfg.batch_size
            )

        step = meta["step"]
        bar = tqdm(total=cfg.steps, initial=step, desc="rnn steps", unit="step", leave=False)
        while step < cfg.steps:
            t0 = time.time()
            end = min(cfg.steps, (step // cfg.steps_per_epoch + 1) * cfg.steps_per_epoch)
            model.seed_gen.state.assign(np.array([args.seed, step], dtype=model.seed_gen.state.dtype))
            sums = {}
            for s in range(step, end):
                fault_point("step")
                batch = sampler.batch(np.random.default_rng([args.seed, s]), cfg.batch_size)
                model.reset_metrics()
                logs = model.train_on_batch(batch, return_dict=True)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                bar.update()
                bar.set_postfix(loss=f"{float(logs['loss']):.3f}")
            row = {"step": end, **{k: v / (end - step) for k, v in sums.items()}}
            if val_batch is not None:
                model.reset_metrics()
                row.update({f"val_{k}": float(v) for k, v in model.test_on_batch(val_batch, return_dict=True).items()})
            row["seconds"] = time.time() - t0
            check_finite({k: v for k, v in row.items() if isinstance(v, float)}, f"rnn step {end}", ckpt_path)
            meta = {
                "settings": settings,
                "step": end,
                "history": meta["history"] + [row],
                "wall_s": meta["wall_s"] + row["seconds"],
            }
            save_checkpoint(ckpt_path, model, optimizer, meta)
            write_metrics_csv(out / "metrics.csv", meta["history"])
            tb.scalars("rnn", {k: v for k, v in row.items() if k != "step"}, end)
            log.info("step %d: loss %.3f z_nll %.3f", end, row["loss"], row["z_nll"])
            step = end
        bar.close()
    finally:
        f.close()

    with atomic_path(out / "rnn.weights.h5") as tmp:
        model.save_weights(tmp)
    arrays = export_rnn(model)
    with open_series(paths.series, fix_hint("series", args)) as f:
        calibration = done_calibration(arrays, f, train_eps, val_eps, cfg.done_pos_weight)
    with atomic_path(out / "rnn.npz") as tmp:
        np.savez(tmp, **arrays)
    write_json(
        out / "config.json",
        {
            "kind": "mdnrnn",
            "env": args.env,
            "preset": args.preset,
            "seed": args.seed,
            "z_size": z_size,
            "action_dim": action_dim,
            "rnn_size": cfg.rnn_size,
            "num_mixtures": cfg.num_mixtures,
            "steps": meta["step"],
            "config": asdict(cfg),
            "inputs": {"series": series_fp, "vision": vision_cfg["fingerprint"]},
            "fingerprint": arrays_digest(arrays),
            "done_bias": calibration["bias"],
            "done_calibration": calibration,
            "wall_s": meta["wall_s"],
            "final": meta["history"][-1] if meta["history"] else {},
        },
    )
    _ = tf
    try:
        _, vae = load_vision(args, need_keras=True)
        plot_predictions(vae, paths.rollouts, arrays, out / "predictions.png")
    except StageError as e:  # a missing frame file must not fail a finished training
        log.warning("no predictions plot: %s", e)
    return out
