"""Stage 2: train V, the ConvVAE (or, with --model vaegan, the VAE-GAN), on frames streamed from the rollouts.

Writes vision/: checkpoint.npz (every epoch; rerunning resumes), vae.weights.h5 and encoder.npz
(the finished encoder and decoder, Keras and numpy: the same files for either kind, so stages 3-5
do not care which), config.json (its "kind"), metrics.csv, tensorboard/, reconstructions.png.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import Run, VisionConfig
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
from worldmodels.io.data import (
    heldout_frames,
    inspect_rollout,
    rollout_files,
    rollouts_fingerprint,
    shuffled_batches,
    split_heldout,
)
from worldmodels.io.plots import save_image_grid

log = logging.getLogger(__name__)


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


def train_vae(args: Run, cfg: VisionConfig) -> Path:
    """Train (or resume training) the ConvVAE; returns the vision directory."""
    import keras
    import tensorflow as tf

    from worldmodels.models.vae import build_vae, export_encoder

    gan = cfg.model == "vaegan"
    paths = Paths(args.data_dir)
    out = paths.vision
    files = rollout_files(paths.rollouts, fix_hint("rollouts", args))
    train_files, held_files = split_heldout(files, cfg.heldout_episodes)
    # A VAE's settings omit the VAE-GAN's knobs, so checkpoints from before they existed still resume.
    vaegan_keys = ("model", "gan", "gamma", "pixel_weight")
    settings = {
        "kind": cfg.model,
        "env": args.env,
        "seed": args.seed,
        "rollouts": rollouts_fingerprint(files),
        **{k: v for k, v in asdict(cfg).items() if k != "epochs" and (gan or k not in vaegan_keys)},
    }
    ckpt_path = out / "checkpoint.npz"
    config_path = out / "config.json"

    keras.utils.set_random_seed(args.seed)
    if gan:
        from worldmodels.models.vaegan import build_vaegan

        vae = build_vaegan(cfg.z_size, cfg.kl_tolerance, cfg.gan, cfg.gamma, cfg.pixel_weight)
        optimizer = vae.compile_training(cfg.learning_rate)
    else:
        vae = build_vae(cfg.z_size, cfg.kl_tolerance)
        optimizer = keras.optimizers.Adam(cfg.learning_rate)
        vae.compile(optimizer=optimizer)
    meta = {"epoch": 0, "history": [], "wall_s": 0.0}
    if ckpt_path.exists():
        meta = load_checkpoint(ckpt_path, vae, optimizer, settings, fix_hint("vision", args))
        log.info("resuming from %s at epoch %d", ckpt_path, meta["epoch"])
    out.mkdir(parents=True, exist_ok=True)
    clean_temporaries(out)
    tb = TensorBoard(out / "tensorboard")
    held = heldout_frames(held_files)
    total_frames = sum(inspect_rollout(f) for f in train_files)

    def evaluate() -> dict[str, float]:
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

    if gan:
        vae.set_learning_rate(cfg.learning_rate * meta.get("lr_scale", 1.0))
    epoch, rollbacks = meta["epoch"], 0
    while epoch < cfg.epochs:
        t0 = time.time()
        # Re-seed sampling per epoch so a resumed run draws the same noise as an uninterrupted one.
        vae.seed_gen.state.assign(np.array([args.seed, epoch], dtype=vae.seed_gen.state.dtype))
        sums: dict[str, float] = {}
        frames = 0
        batches = shuffled_batches(
            train_files, cfg.batch_size, cfg.shuffle_buffer, args.seed, epoch, cfg.max_frames_per_epoch
        )
        n_frames = min(total_frames, cfg.max_frames_per_epoch or total_frames)
        bar = tqdm(
            batches,
            desc=f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            leave=False,
            total=-(-n_frames // cfg.batch_size),
        )
        for batch in bar:
            fault_point("batch")
            if gan:
                try:
                    logs = vae.train_batch(batch)
                except FloatingPointError as e:
                    raise StageError(
                        f"vaegan epoch {epoch + 1}: {e}; stopped. The last good checkpoint {ckpt_path} is kept; "
                        "lower --learning-rate or --gamma, or add --pixel-weight, and rerun"
                    ) from e
            else:
                vae.reset_metrics()
                logs = vae.train_on_batch(batch, return_dict=True)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + len(batch) * float(v)
            frames += len(batch)
            bar.set_postfix(loss=f"{float(logs['loss']):.1f}")
        if frames == 0:
            raise RuntimeError("no training frames")
        row = {
            "epoch": epoch + 1,
            **{k: v / frames for k, v in sums.items()},
            **evaluate(),
            "frames": frames,
            "seconds": time.time() - t0,
        }
        if gan and diverged(row, meta["history"]):
            # GAN training can blow up (the encoder chasing the discriminator's features); the last
            # checkpoint is the last good epoch: go back to it and halve the learning rates.
            rollbacks += 1
            if rollbacks > MAX_ROLLBACKS or not ckpt_path.exists():
                raise StageError(
                    f"vaegan epoch {epoch + 1} diverged ({_loss_key(row)} {row[_loss_key(row)]:.1f})"
                    + (f" {rollbacks - 1} times in a row" if ckpt_path.exists() else " before any checkpoint")
                    + f"; the last good checkpoint {ckpt_path} is kept; rerun with a lower --learning-rate"
                )
            scale = meta.get("lr_scale", 1.0) * 0.5
            log.warning(
                "vaegan epoch %d diverged (%s %.1f, best so far %.1f): back to the checkpoint of epoch %d, "
                "learning rates x%.3g",
                epoch + 1,
                _loss_key(row),
                row[_loss_key(row)],
                min(h[_loss_key(row)] for h in meta["history"]),
                epoch,
                scale,
            )
            spent = row["seconds"]
            meta = load_checkpoint(ckpt_path, vae, optimizer, settings, fix_hint("vision", args))
            meta["lr_scale"] = scale
            meta["wall_s"] += spent
            meta["rollbacks"] = meta.get("rollbacks", []) + [{"epoch": epoch + 1, "row": row, "lr_scale": scale}]
            vae.set_learning_rate(cfg.learning_rate * scale)
            continue
        rollbacks = 0
        check_finite({k: v for k, v in row.items() if isinstance(v, float)}, f"vae epoch {epoch + 1}", ckpt_path)
        meta = {
            **meta,
            "settings": settings,
            "epoch": epoch + 1,
            "history": meta["history"] + [row],
            "wall_s": meta["wall_s"] + row["seconds"],
        }
        save_checkpoint(ckpt_path, vae, optimizer, meta)
        write_metrics_csv(out / "metrics.csv", meta["history"])
        tb.scalars("vae", {k: v for k, v in row.items() if k != "epoch"}, epoch + 1)
        log.info(
            "epoch %d: loss %.2f r_loss %.2f kl %.2f (%.0f frames/s)",
            epoch + 1,
            row["loss"],
            row["r_loss"],
            row["kl"],
            frames / row["seconds"],
        )
        if gan:
            log.info(
                "  vaegan: llike %.1f d_loss %.3f g_loss %.3f D(real) %.3f D(decoded) %.3f",
                row["llike"],
                row["d_loss"],
                row["g_loss"],
                row["d_real"],
                row["d_fake"],
            )
            if cfg.gan == "gan" and row["d_real"] > 0.98 and row["d_fake"] < 0.02:
                log.warning(
                    "vaegan epoch %d: the discriminator wins outright (D(real) %.3f, D(decoded) %.3f): the decoder "
                    "gets no GAN gradient; consider --gan wgan-gp or a larger --gamma",
                    epoch + 1,
                    row["d_real"],
                    row["d_fake"],
                )
        epoch += 1

    if gan:
        vae = vae.to_vae()  # encoder + decoder; the discriminator stays in checkpoint.npz
    with atomic_path(out / "vae.weights.h5") as tmp:
        vae.save_weights(tmp)
    encoder = export_encoder(vae)
    with atomic_path(out / "encoder.npz") as tmp:
        np.savez(tmp, **encoder)
    if len(held):
        sample = held[np.linspace(0, len(held) - 1, 8).astype(int)]
        recon = np.asarray(vae(tf.cast(sample, tf.float32) / 255.0) * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
        save_image_grid(out / "reconstructions.png", [sample, recon])
    write_json(
        config_path,
        {
            "kind": cfg.model,
            **({"gan": cfg.gan, "gamma": cfg.gamma, "pixel_weight": cfg.pixel_weight} if gan else {}),
            "env": args.env,
            "preset": args.preset,
            "seed": args.seed,
            "z_size": cfg.z_size,
            "kl_tolerance": cfg.kl_tolerance,
            "epochs": meta["epoch"],
            "config": asdict(cfg),
            "inputs": {
                "rollouts": settings["rollouts"],
                "train_episodes": len(train_files),
                "heldout_episodes": len(held_files),
            },
            "fingerprint": arrays_digest(encoder),
            "wall_s": meta["wall_s"],
            "final": meta["history"][-1] if meta["history"] else {},
        },
    )
    return out
