"""Stage 3: encode every rollout with V into series/series.h5 (mu, logvar, action, reward, terminated).

Each episode's encoding is cached under series/parts/<vision fingerprint>/ as it is made, so a
killed run skips the episodes already done; series.h5 is then assembled in one atomic write.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodels.config import EncodeConfig, Run
from worldmodels.envs.registry import get_spec
from worldmodels.io.artifacts import (
    Paths,
    atomic_path,
    clean_temporaries,
    fault_point,
    fix_hint,
    one_writer,
    text_digest,
)
from worldmodels.io.data import load_rollout, rollout_digest, rollout_files, rollouts_fingerprint, write_series
from worldmodels.models.loading import load_vision

log = logging.getLogger(__name__)


PART_KEYS = ("mu", "logvar", "action", "reward", "terminated", "rollout_digest")


def part_is_current(part: Path, digest: str) -> bool:
    """Whether a cached encoding is complete, readable and made from exactly this rollout's content
    (a rollout replaced, deleted and re-collected, or fixed, gets encoded again)."""
    try:
        with np.load(part) as z:
            return set(PART_KEYS) <= set(z.files) and str(z["rollout_digest"]) == digest
    except Exception:  # noqa: BLE001 - an unreadable cache entry is simply made again
        return False


def encode_episode(encode, rollout: Path, part: Path, digest: str, batch_size: int) -> None:
    """Encode one rollout to (mu, logvar) and cache it with its actions, rewards and the rollout's digest."""
    ep = load_rollout(rollout)
    mus, logvars = [], []
    for i in range(0, len(ep["obs"]), batch_size):
        mu, logvar = encode(ep["obs"][i : i + batch_size])
        mus.append(mu.numpy())
        logvars.append(logvar.numpy())
    with atomic_path(part) as tmp:
        np.savez(
            tmp,
            mu=np.concatenate(mus),
            logvar=np.concatenate(logvars),
            action=ep["action"],
            reward=ep["reward"],
            terminated=ep["terminated"],
            rollout_digest=np.array(digest),
        )


@one_writer("encode", "series")
def encode_rollouts(args: Run, cfg: EncodeConfig) -> Path:
    """Encode all rollouts (each one whose cached encoding is missing or stale); returns series.h5's path."""
    import tensorflow as tf

    paths = Paths(args.data_dir)
    files = rollout_files(paths.rollouts, fix_hint("rollouts", args), get_spec(args.env).action_dim)
    vision_cfg, vae = load_vision(args, need_keras=True)
    vision_fp = vision_cfg["fingerprint"]
    parts_dir = paths.series.parent / "parts" / vision_fp
    parts_dir.mkdir(parents=True, exist_ok=True)
    clean_temporaries(parts_dir)
    clean_temporaries(paths.series.parent)

    digests = {f: rollout_digest(f) for f in files}
    encode = tf.function(lambda x: vae.encode(tf.cast(x, tf.float32) / 255.0), reduce_retracing=True)
    todo = [f for f in files if not part_is_current(parts_dir / f.name, digests[f])]
    log.info("%d of %d episodes already encoded", len(files) - len(todo), len(files))
    for f in tqdm(todo, desc="encoding episodes", unit="ep"):
        fault_point("episode")
        part = parts_dir / f.name
        if part.is_symlink():  # a link into an earlier round's cache: never overwrite that round's file
            part.unlink()
        encode_episode(encode, f, part, digests[f], cfg.batch_size)

    rollouts_fp = rollouts_fingerprint(files)
    content_fp = text_digest("\n".join(f"{f.name}:{digests[f]}" for f in files))
    attrs = {
        "vision_fingerprint": vision_fp,
        "rollouts_fingerprint": rollouts_fp,
        "rollouts_content": content_fp,
        "env": args.env,
        "fingerprint": text_digest(vision_fp + rollouts_fp + content_fp),
    }
    series = paths.series
    if series.exists() and _attrs_match(series, attrs):
        log.info("%s is up to date", series)
        return series
    n = write_series(series, [parts_dir / f.name for f in files], attrs)
    log.info("wrote %d steps of %d episodes", n, len(files))
    return series


def _attrs_match(path: Path, attrs: dict[str, str]) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return all(str(f.attrs.get(k)) == v for k, v in attrs.items())
    except OSError:
        return False
