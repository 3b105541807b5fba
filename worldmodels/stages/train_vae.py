"""Stage 2: train V, the ConvVAE (or, with --model vaegan, the VAE-GAN), on frames streamed from the rollouts.

Writes vision/: checkpoint.npz (every epoch; rerunning resumes), vae.weights.h5 and encoder.npz
(the finished encoder and decoder, Keras and numpy: the same files for either kind, so stages 3-5
do not care which), config.json (its "kind"), metrics.csv, tensorboard/, reconstructions.png.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import Run, VisionConfig
from worldmodels.envs.registry import get_spec
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
    text_digest,
    write_json,
)
from worldmodels.io.checkpoints import TensorBoard, check_finite, load_checkpoint, save_checkpoint, write_metrics_csv
from worldmodels.io.data import (
    heldout_frames,
    inspect_rollout,
    prefetch,
    rollout_digest,
    rollout_files,
    rollouts_fingerprint,
    shuffled_batches,
    split_heldout,
)
from worldmodels.io.plots import save_image_grid

log = logging.getLogger(__name__)


META_KEYS = ("epoch", "history", "wall_s")
MAX_ROLLBACKS = 3
DIVERGENCE_FACTOR = 3.0


def _loss_key(row: dict) -> str:
    return "heldout_loss" if "heldout_loss" in row else "loss"


def diverged(row: dict, history: list[dict]) -> bool:
    """An epoch diverged if its (held-out) loss is not finite or over DIVERGENCE_FACTOR x the best so far."""
    key = _loss_key(row)
    if not np.isfinite(row[key]):
        return True
    best = [h[key] for h in history if key in h]
    return bool(best) and row[key] > DIVERGENCE_FACTOR * min(best)


class _Training:
    """What one run of stage 2 works with: the model, its optimizer, the checkpoint's meta, the data."""

    def __init__(self, run: Run, cfg: VisionConfig):
        import keras

        self.run, self.cfg, self.gan = run, cfg, cfg.model == "vaegan"
        paths = Paths(run.data_dir)
        self.out = paths.vision
        files = rollout_files(paths.rollouts, fix_hint("rollouts", run), get_spec(run.env).action_dim)
        self.train_files, self.held_files = split_heldout(files, cfg.heldout_episodes)
        # A VAE's settings omit the VAE-GAN's knobs, so checkpoints from before they existed still resume.
        vaegan_keys = ("model", "gan", "gamma", "pixel_weight")
        # and mixed precision enters them only when used, for the same reason.
        self.settings = {
            "kind": cfg.model,
            "env": run.env,
            "seed": run.seed,
            "rollouts": rollouts_fingerprint(files),
            **{
                k: v
                for k, v in asdict(cfg).items()
                if k != "epochs"
                and (self.gan or k not in vaegan_keys)
                and (cfg.mixed_precision or k != "mixed_precision")
            },
        }
        # The rollouts' content (not in the settings, so checkpoints from before it existed resume).
        self.content = text_digest("\n".join(f"{f.name}:{rollout_digest(f)}" for f in files))
        self.ckpt_path = self.out / "checkpoint.npz"
        keras.utils.set_random_seed(run.seed)
        self.vae, self.optimizer = _build_model(cfg)
        self.meta = {"epoch": 0, "history": [], "wall_s": 0.0, "rollouts_content": self.content}
        if self.ckpt_path.exists():
            self.meta = self.load_checkpoint()
            if self.meta.get("rollouts_content", self.content) != self.content:
                raise StageError(
                    f"the rollouts in {paths.rollouts} changed since {self.ckpt_path} was trained on them (same "
                    f"names and sizes, other content); delete {self.out} to train V on them, then rerun "
                    f"`{fix_hint('vision', run)}`"
                )
            self.meta["rollouts_content"] = self.content
            log.info("resuming from %s at epoch %d", self.ckpt_path, self.meta["epoch"])
        if self.gan:
            self.vae.set_learning_rate(cfg.learning_rate * self.meta.get("lr_scale", 1.0))
        self.held = heldout_frames(self.held_files)
        self.total_frames = sum(inspect_rollout(f) for f in self.train_files)

    def load_checkpoint(self) -> dict:
        return load_checkpoint(
            self.ckpt_path, self.vae, self.optimizer, self.settings, fix_hint("vision", self.run), META_KEYS
        )


def _build_model(cfg: VisionConfig):
    """(V, its optimizer) for cfg: the ConvVAE, or the VAE-GAN with its optimiser group."""
    import keras

    from worldmodels.models.vae import build_vae

    if cfg.model == "vaegan":
        from worldmodels.models.vaegan import build_vaegan

        vae = build_vaegan(cfg.z_size, cfg.kl_tolerance, cfg.gan, cfg.gamma, cfg.pixel_weight)
        return vae, vae.compile_training(cfg.learning_rate)
    vae = build_vae(cfg.z_size, cfg.kl_tolerance, cfg.mixed_precision)
    vae.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
    return vae, vae.optimizer  # wrapped in a LossScaleOptimizer under mixed precision: checkpointed whole


def heldout_metrics(vae, held: np.ndarray, gan: bool) -> dict[str, float]:
    """V's losses on the held-out frames uint8 [N,64,64,3], as heldout_<name> (empty without frames)."""
    import tensorflow as tf

    if len(held) == 0:
        return {}
    sums: dict[str, float] = {}
    for i in range(0, len(held), 128):
        x = tf.cast(held[i : i + 128], tf.float32) / 255.0
        if gan:
            values = vae.heldout_metrics(x)
        else:
            values = dict(zip(("loss", "r_loss", "kl"), vae.compute_losses(x, training=False)))
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + len(x) * float(v)
    return {f"heldout_{k}": v / len(held) for k, v in sums.items()}


def _train_epoch(t: _Training, epoch: int) -> dict:
    """One pass over the training frames (streamed, shuffled by (seed, epoch)); returns its metrics row."""
    cfg, vae, t0 = t.cfg, t.vae, time.time()
    # Re-seed sampling per epoch so a resumed run draws the same noise as an uninterrupted one.
    vae.seed_gen.state.assign(np.array([t.run.seed, epoch], dtype=vae.seed_gen.state.dtype))
    sums: dict[str, float] = {}
    frames = 0
    batches = prefetch(  # the next batches load while V trains on this one
        shuffled_batches(t.train_files, cfg.batch_size, cfg.shuffle_buffer, t.run.seed, epoch, cfg.max_frames_per_epoch)
    )
    n_frames = min(t.total_frames, cfg.max_frames_per_epoch or t.total_frames)
    with contextlib.closing(batches):  # stopped here, in this thread, however the epoch ends
        bar = tqdm(
            batches,
            desc=f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            leave=False,
            total=-(-n_frames // cfg.batch_size),
        )
        for batch in bar:
            fault_point("batch")
            logs = _train_batch(t, batch, epoch)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + len(batch) * float(v)
            frames += len(batch)
            bar.set_postfix(loss=f"{float(logs['loss']):.1f}")
    if frames == 0:
        raise StageError(f"no training frames in {t.run.data_dir / 'rollouts'}; rerun `{fix_hint('rollouts', t.run)}`")
    row = {"epoch": epoch + 1, **{k: v / frames for k, v in sums.items()}}
    return {**row, **heldout_metrics(vae, t.held, t.gan), "frames": frames, "seconds": time.time() - t0}


def _train_batch(t: _Training, batch: np.ndarray, epoch: int) -> dict:
    if not t.gan:
        t.vae.reset_metrics()
        return t.vae.train_on_batch(batch, return_dict=True)
    try:
        return t.vae.train_batch(batch)
    except FloatingPointError as e:
        raise StageError(
            f"vaegan epoch {epoch + 1}: {e}; stopped. The last good checkpoint {t.ckpt_path} is kept; "
            "lower --learning-rate or --gamma, or add --pixel-weight, and rerun"
        ) from e


def _roll_back(t: _Training, row: dict, epoch: int, rollbacks: int) -> None:
    """GAN training can blow up (the encoder chasing the discriminator's features); the last
    checkpoint is the last good epoch: go back to it and halve the learning rates."""
    key = _loss_key(row)
    if rollbacks > MAX_ROLLBACKS or not t.ckpt_path.exists():
        raise StageError(
            f"vaegan epoch {epoch + 1} diverged ({key} {row[key]:.1f})"
            + (f" {rollbacks - 1} times in a row" if t.ckpt_path.exists() else " before any checkpoint")
            + f"; the last good checkpoint {t.ckpt_path} is kept; rerun with a lower --learning-rate"
        )
    scale = t.meta.get("lr_scale", 1.0) * 0.5
    log.warning(
        "vaegan epoch %d diverged (%s %.1f, best so far %.1f): back to the checkpoint of epoch %d, "
        "learning rates x%.3g",
        epoch + 1,
        key,
        row[key],
        min(h[key] for h in t.meta["history"]),
        epoch,
        scale,
    )
    spent = row["seconds"]
    t.meta = t.load_checkpoint()
    t.meta["lr_scale"] = scale
    t.meta["wall_s"] += spent
    t.meta["rollbacks"] = t.meta.get("rollbacks", []) + [{"epoch": epoch + 1, "row": row, "lr_scale": scale}]
    t.vae.set_learning_rate(t.cfg.learning_rate * scale)


def _save_epoch(t: _Training, row: dict, tb: TensorBoard) -> None:
    """Checkpoint, metrics.csv and TensorBoard after a good epoch."""
    t.meta = {
        **t.meta,
        "settings": t.settings,
        "epoch": row["epoch"],
        "history": t.meta["history"] + [row],
        "wall_s": t.meta["wall_s"] + row["seconds"],
    }
    save_checkpoint(t.ckpt_path, t.vae, t.optimizer, t.meta)
    write_metrics_csv(t.out / "metrics.csv", t.meta["history"])
    tb.scalars("vae", {k: v for k, v in row.items() if k != "epoch"}, row["epoch"])


def _log_epoch(t: _Training, row: dict) -> None:
    log.info(
        "epoch %d: loss %.2f r_loss %.2f kl %.2f (%.0f frames/s)",
        row["epoch"],
        row["loss"],
        row["r_loss"],
        row["kl"],
        row["frames"] / row["seconds"],
    )
    if not t.gan:
        return
    log.info(
        "  vaegan: llike %.1f d_loss %.3f g_loss %.3f D(real) %.3f D(decoded) %.3f",
        row["llike"],
        row["d_loss"],
        row["g_loss"],
        row["d_real"],
        row["d_fake"],
    )
    if t.cfg.gan == "gan" and row["d_real"] > 0.98 and row["d_fake"] < 0.02:
        log.warning(
            "vaegan epoch %d: the discriminator wins outright (D(real) %.3f, D(decoded) %.3f): the decoder "
            "gets no GAN gradient; consider --gan wgan-gp or a larger --gamma",
            row["epoch"],
            row["d_real"],
            row["d_fake"],
        )


def _export(t: _Training) -> None:
    """The finished V: Keras weights, the numpy encoder, the reconstructions grid and config.json."""
    import tensorflow as tf

    from worldmodels.models.vae import export_encoder, to_uint8

    cfg, vae = t.cfg, t.vae.to_vae() if t.gan else t.vae  # the discriminator stays in checkpoint.npz
    with atomic_path(t.out / "vae.weights.h5") as tmp:
        vae.save_weights(tmp)
    encoder = export_encoder(vae)
    with atomic_path(t.out / "encoder.npz") as tmp:
        np.savez(tmp, **encoder)
    if len(t.held):
        sample = t.held[np.linspace(0, len(t.held) - 1, 8).astype(int)]
        save_image_grid(t.out / "reconstructions.png", [sample, to_uint8(vae(tf.cast(sample, tf.float32) / 255.0))])
    write_json(
        t.out / "config.json",
        {
            "kind": cfg.model,
            **({"gan": cfg.gan, "gamma": cfg.gamma, "pixel_weight": cfg.pixel_weight} if t.gan else {}),
            "env": t.run.env,
            "preset": t.run.preset,
            "seed": t.run.seed,
            "command": command_line(SCRIPTS["vision"], t.run),
            "z_size": cfg.z_size,
            "kl_tolerance": cfg.kl_tolerance,
            "epochs": t.meta["epoch"],
            "config": asdict(cfg),
            "inputs": {
                "rollouts": t.settings["rollouts"],
                "rollouts_content": t.content,
                "train_episodes": len(t.train_files),
                "heldout_episodes": len(t.held_files),
            },
            "fingerprint": arrays_digest(encoder),
            "wall_s": t.meta["wall_s"],
            "final": t.meta["history"][-1] if t.meta["history"] else {},
        },
    )


@one_writer("vision", "vision")
def train_vae(run: Run, cfg: VisionConfig) -> Path:
    """Train (or resume training) V; returns the vision directory."""
    t = _Training(run, cfg)
    t.out.mkdir(parents=True, exist_ok=True)
    clean_temporaries(t.out)
    tb = TensorBoard(t.out / "tensorboard")
    epoch, rollbacks = t.meta["epoch"], 0
    while epoch < cfg.epochs:
        row = _train_epoch(t, epoch)
        if t.gan and diverged(row, t.meta["history"]):
            rollbacks += 1
            _roll_back(t, row, epoch, rollbacks)
            continue
        rollbacks = 0
        check_finite({k: v for k, v in row.items() if isinstance(v, float)}, f"vae epoch {epoch + 1}", t.ckpt_path)
        _save_epoch(t, row, tb)
        _log_epoch(t, row)
        epoch += 1
    _export(t)
    return t.out
