"""Stage 4: train M, the MDN-RNN, on windows of the encoded series (teacher forcing).

Writes memory/: checkpoint.npz (every `steps_per_epoch` steps; rerunning resumes), rnn.weights.h5
and rnn.npz (Keras and numpy), config.json, metrics.csv, tensorboard/.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import MemoryConfig, Run
from worldmodels.io.artifacts import (
    SCRIPTS,
    Paths,
    StageError,
    arrays_digest,
    atomic_path,
    clean_temporaries,
    command_line,
    fault_point,
    fix_hint,
    one_writer,
    write_json,
)
from worldmodels.io.checkpoints import TensorBoard, check_finite, load_checkpoint, save_checkpoint, write_metrics_csv
from worldmodels.io.data import SeriesSampler, open_series, prefetch
from worldmodels.models.loading import load_vision
from worldmodels.models.memory.calibration import done_calibration
from worldmodels.models.memory.plots import plot_predictions

log = logging.getLogger(__name__)


def _check_series(run: Run, f, vision_cfg: dict) -> None:
    """The series must have been encoded by this V (fingerprint and z size)."""
    series = Paths(run.data_dir).series
    if str(f.attrs.get("vision_fingerprint")) != vision_cfg["fingerprint"]:
        raise StageError(
            f"{series} was encoded by another vision model (fingerprint "
            f"{f.attrs.get('vision_fingerprint')}, {Paths(run.data_dir).vision / 'config.json'} says "
            f"{vision_cfg['fingerprint']}); "
            f"rerun `{fix_hint('series', run)}`"
        )
    if f["mu"].shape[1] != vision_cfg["z_size"]:
        raise StageError(
            f"{series} has z size {f['mu'].shape[1]} but V has {vision_cfg['z_size']}; "
            f"rerun `{fix_hint('series', run)}`"
        )


def split_episodes(n_ep: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, validation) episode indices: the last 5% (at least one, from 4 episodes up) validate."""
    n_val = max(1, n_ep // 20) if n_ep >= 4 else 0
    return np.arange(n_ep - n_val), np.arange(n_ep - n_val, n_ep)


def _settings(run: Run, cfg: MemoryConfig, series_fp: str) -> dict:
    """What a checkpoint must have been trained with to be resumed."""
    return {
        "env": run.env,
        "seed": run.seed,
        "series": series_fp,
        # The next-action knobs, dropout, windows and mixed precision enter the settings only when used: older
        # checkpoints still resume.
        **{
            k: v
            for k, v in asdict(cfg).items()
            if k != "steps"
            and (cfg.predict_action or k not in ("predict_action", "action_weight"))
            and (cfg.dropout or k != "dropout")
            and (cfg.windows != "inside" or k != "windows")
            and (cfg.mixed_precision or k != "mixed_precision")
        },
    }


def _build_model(cfg: MemoryConfig, z_size: int, action_dim: int, seed: int):
    """(M, its Adam optimizer with gradient clipping), compiled."""
    import keras

    from worldmodels.models.memory.mdnrnn import build_mdnrnn

    keras.utils.set_random_seed(seed)
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
        dropout=cfg.dropout,
        mixed_precision=cfg.mixed_precision,
    )
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate, global_clipnorm=cfg.grad_clip))
    return model, model.optimizer  # wrapped in a LossScaleOptimizer under mixed precision: checkpointed whole


def _train_interval(model, sampler, run: Run, cfg: MemoryConfig, step: int, end: int, val_batch, bar) -> dict:
    """Steps step..end-1 (batch s drawn with RNG (seed, s)); returns the interval's metrics row."""
    t0 = time.time()
    model.seed_gen.state.assign(np.array([run.seed, step], dtype=model.seed_gen.state.dtype))
    sums: dict[str, float] = {}
    # batch s is drawn with RNG (seed, s), the next ones in a background thread while M trains
    batches = prefetch(sampler.batch(np.random.default_rng([run.seed, s]), cfg.batch_size) for s in range(step, end))
    with contextlib.closing(batches):  # stopped here, in this thread, however the interval ends
        for batch in batches:
            fault_point("step")
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
    return row


def _train(run: Run, cfg: MemoryConfig, f, train_eps, val_eps, settings: dict):
    """Train M on the open series `f` from its checkpoint (if any) to cfg.steps; returns (model, meta)."""
    out = Paths(run.data_dir).memory
    sampler = SeriesSampler(f, train_eps, cfg.seq_len, cfg.windows)
    model, optimizer = _build_model(cfg, sampler.z_size, sampler.action_dim, run.seed)
    ckpt_path = out / "checkpoint.npz"
    meta = {"step": 0, "history": [], "wall_s": 0.0}
    if ckpt_path.exists():
        meta = load_checkpoint(
            ckpt_path, model, optimizer, settings, fix_hint("memory", run), ("step", "history", "wall_s")
        )
        log.info("resuming from %s at step %d", ckpt_path, meta["step"])
    out.mkdir(parents=True, exist_ok=True)
    clean_temporaries(out)
    tb = TensorBoard(out / "tensorboard")
    val_batch = None
    if len(val_eps):
        val_rng = np.random.default_rng([run.seed, 999])
        # held-out windows always lie inside their episodes, so val_z_nll means the same under any --windows
        val_batch = SeriesSampler(f, val_eps, cfg.seq_len).batch(val_rng, cfg.batch_size)
    step = meta["step"]
    bar = tqdm(total=cfg.steps, initial=step, desc="rnn steps", unit="step", leave=False)
    while step < cfg.steps:
        end = min(cfg.steps, (step // cfg.steps_per_epoch + 1) * cfg.steps_per_epoch)
        row = _train_interval(model, sampler, run, cfg, step, end, val_batch, bar)
        check_finite({k: v for k, v in row.items() if isinstance(v, float)}, f"rnn step {end}", ckpt_path)
        meta = {**meta, "settings": settings, "step": end, "history": meta["history"] + [row]}
        meta["wall_s"] = meta["wall_s"] + row["seconds"]
        save_checkpoint(ckpt_path, model, optimizer, meta)
        write_metrics_csv(out / "metrics.csv", meta["history"])
        tb.scalars("rnn", {k: v for k, v in row.items() if k != "step"}, end)
        log.info("step %d: loss %.3f z_nll %.3f", end, row["loss"], row["z_nll"])
        step = end
    bar.close()
    return model, meta


def _export(run: Run, cfg: MemoryConfig, model, meta: dict, vision_cfg: dict, series_fp: str, eps) -> dict:
    """The finished M: Keras weights, rnn.npz, the done calibration, config.json; returns the numpy weights."""
    from worldmodels.models.memory.mdnrnn import export_rnn

    paths = Paths(run.data_dir)
    out = paths.memory
    with atomic_path(out / "rnn.weights.h5") as tmp:
        model.save_weights(tmp)
    arrays = export_rnn(model)
    with open_series(paths.series, fix_hint("series", run)) as f:
        calibration = done_calibration(arrays, f, *eps, cfg.done_pos_weight)
        z_size, action_dim = f["mu"].shape[1], f["action"].shape[1]
    with atomic_path(out / "rnn.npz") as tmp:
        np.savez(tmp, **arrays)
    write_json(
        out / "config.json",
        {
            "kind": "mdnrnn",
            **{"env": run.env, "preset": run.preset, "seed": run.seed},
            "command": command_line(SCRIPTS["memory"], run),
            **{"z_size": z_size, "action_dim": action_dim},
            **{"rnn_size": cfg.rnn_size, "num_mixtures": cfg.num_mixtures, "steps": meta["step"]},
            "config": asdict(cfg),
            "inputs": {"series": series_fp, "vision": vision_cfg["fingerprint"]},
            "fingerprint": arrays_digest(arrays),
            "done_bias": calibration["bias"],
            "done_calibration": calibration,
            "wall_s": meta["wall_s"],
            "final": meta["history"][-1] if meta["history"] else {},
        },
    )
    return arrays


@one_writer("memory", "memory")
def train_rnn(run: Run, cfg: MemoryConfig) -> Path:
    """Train (or resume training) the MDN-RNN; returns the memory directory."""
    paths = Paths(run.data_dir)
    vision_cfg, _ = load_vision(run)
    with open_series(paths.series, fix_hint("series", run)) as f:
        _check_series(run, f, vision_cfg)
        train_eps, val_eps = split_episodes(len(f["episode_starts"]) - 1)
        series_fp = str(f.attrs["fingerprint"])
        settings = _settings(run, cfg, series_fp)
        model, meta = _train(run, cfg, f, train_eps, val_eps, settings)
    arrays = _export(run, cfg, model, meta, vision_cfg, series_fp, (train_eps, val_eps))
    try:
        _, vae = load_vision(run, need_keras=True)
        plot_predictions(vae, paths.rollouts, arrays, paths.memory / "predictions.png")
    except StageError as e:  # a missing frame file must not fail a finished training
        log.warning("no predictions plot: %s", e)
    return paths.memory
