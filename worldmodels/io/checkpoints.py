"""Shared training plumbing for V and M: checkpoints that resume exactly, metrics CSV and TensorBoard.

A checkpoint is one .npz: the model's weights, the optimizer's variables, and a JSON `meta`
(the settings it was trained with, the step or epoch reached, the metrics so far), so a rerun
rebuilds everything from the file alone (nanoGPT style).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from worldmodels.io.artifacts import StageError, atomic_path

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, model, optimizer, meta: dict[str, Any]) -> None:
    """Write weights, optimizer state and meta to one .npz, atomically."""
    arrays = {f"w{i:04d}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays.update({f"o{i:04d}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def load_checkpoint(
    path: Path, model, optimizer, settings: dict[str, Any], rerun_hint: str, required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Restore a checkpoint into a built model and optimizer; return its meta.

    Refuses (StageError) a checkpoint trained with other settings: mixing them would silently
    train a different model than the flags say.
    """
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            weights = [z[k] for k in sorted(k for k in z.files if k.startswith("w"))]
            opt_vars = [z[k] for k in sorted(k for k in z.files if k.startswith("o"))]
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
        raise StageError(f"checkpoint {path} is unreadable ({e}); delete it and rerun `{rerun_hint}`") from e
    if not isinstance(meta, dict) or any(k not in meta for k in required):
        raise StageError(f"checkpoint {path} has no valid meta; delete it and rerun `{rerun_hint}` to start over")
    if meta.get("settings") != settings:
        diff = {
            k: (meta.get("settings", {}).get(k), v) for k, v in settings.items() if meta.get("settings", {}).get(k) != v
        }
        raise StageError(
            f"checkpoint {path} was trained with other settings {diff} (checkpoint, now); "
            f"rerun with the checkpoint's flags to resume, or delete {path.parent} to start over"
        )
    bad = [
        k for k, a in enumerate(weights + opt_vars) if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all()
    ]
    if bad:
        raise StageError(
            f"checkpoint {path} holds NaN or inf weights; delete it and rerun `{rerun_hint}` to start over"
        )
    try:
        model.set_weights(weights)
        optimizer.build(model.trainable_variables)
        if len(opt_vars) != len(optimizer.variables):
            raise ValueError(f"{len(opt_vars)} optimizer variables, the optimizer has {len(optimizer.variables)}")
        for var, value in zip(optimizer.variables, opt_vars):
            var.assign(value)
    except (ValueError, TypeError) as e:
        raise StageError(
            f"checkpoint {path} does not fit this model ({str(e)[:200]}); delete it and rerun `{rerun_hint}` "
            "to start over"
        ) from e
    return meta


def check_finite(metrics: dict[str, float], where: str, ckpt: Path) -> None:
    """Stop training on a NaN or inf loss; the last good checkpoint (if any) stays as it is."""
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        kept = (
            f"The last good checkpoint {ckpt} is kept"
            if Path(ckpt).exists()
            else f"No checkpoint was written yet ({ckpt} does not exist): training starts over"
        )
        raise StageError(f"{where}: non-finite {bad}; stopped. {kept}; lower --learning-rate and rerun")


def write_metrics_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite the whole metrics CSV from the rows kept in the checkpoint (so it never disagrees)."""
    if not rows:
        return
    keys = list(rows[0].keys())
    for r in rows[1:]:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


class TensorBoard:
    """Scalars under namespaced tags (`vae/kl`, `rnn/z_nll`, `es/reward_max`) in `log_dir`."""

    def __init__(self, log_dir: Path):
        import tensorflow as tf

        self._tf = tf
        try:
            self.writer = tf.summary.create_file_writer(str(log_dir))
        except (tf.errors.OpError, OSError) as e:
            raise StageError(
                f"cannot write TensorBoard logs to {log_dir} ({getattr(e, 'message', e)}); fix its permissions or "
                "free space, then rerun the same command to resume"
            ) from e

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        with self.writer.as_default():
            for k, v in values.items():
                self._tf.summary.scalar(f"{prefix}/{k}", float(v), step=step)
        self.writer.flush()
