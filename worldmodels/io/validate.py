"""Validation of every weights file a loader reads: readable, non-empty, the expected keys, dtypes
and shapes, sizes that agree with each other and with the configs, finite values.

Each check raises StageError with one message: the file, what is wrong, and the command that fixes
it. The loaders (models/loading.py) and `worldmodels check` run the same checks.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from worldmodels.io.artifacts import StageError

ENCODER_CHANNELS = (3, 32, 64, 128, 256)
ENCODER_FLAT = 2 * 2 * 256
DECODER_KEYS = tuple(f"dec{i}_{p}" for i in range(5) for p in ("w", "b"))


def read_npz(path: Path, fix: str) -> dict[str, np.ndarray]:
    """All arrays of an .npz, or a StageError naming the file (missing, empty, truncated, not an npz)."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path} is missing; run `{fix}`")
    if path.stat().st_size == 0:
        raise StageError(f"{path} is empty (0 bytes); rerun `{fix}`")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("not an .npz archive")
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        raise StageError(f"{path} is unreadable ({type(e).__name__}: {e}); rerun `{fix}`") from e


def _expect(arrays: dict, path: Path, fix: str, shapes: dict[str, tuple]) -> None:
    """Keys present, float arrays of the given shapes (None: any size on that axis), finite."""
    missing = sorted(set(shapes) - set(arrays))
    if missing:
        raise StageError(f"{path} lacks {missing}; rerun `{fix}`")
    for k, want in shapes.items():
        a = arrays[k]
        if not np.issubdtype(a.dtype, np.floating):
            raise StageError(f"{path}: {k} has dtype {a.dtype}, want a float array; rerun `{fix}`")
        if a.ndim != len(want) or any(w is not None and w != s for w, s in zip(want, a.shape)):
            shown = tuple("*" if w is None else w for w in want)
            raise StageError(f"{path}: {k} has shape {a.shape}, want {shown}; rerun `{fix}`")
        if not np.all(np.isfinite(a)):
            raise StageError(f"{path}: {k} holds NaN or inf; rerun `{fix}`")


def check_encoder(arrays: dict, path: Path, fix: str, z_size: int | None = None) -> int:
    """V's numpy encoder (encoder.npz); returns its z size, which must equal `z_size` when given."""
    mu_b = arrays.get("mu_b")
    z = int(mu_b.shape[0]) if isinstance(mu_b, np.ndarray) and mu_b.ndim == 1 else None
    shapes: dict[str, tuple] = {}
    for i in range(4):
        cin, cout = ENCODER_CHANNELS[i], ENCODER_CHANNELS[i + 1]
        shapes[f"conv{i}_w"], shapes[f"conv{i}_b"] = (4, 4, cin, cout), (cout,)
    for head in ("mu", "logvar"):
        shapes[f"{head}_w"], shapes[f"{head}_b"] = (ENCODER_FLAT, z), (z,)
    _expect(arrays, path, fix, shapes)
    if z_size is not None and z != z_size:
        raise StageError(f"{path} encodes to z size {z} but its config.json says {z_size}; rerun `{fix}`")
    return z


def check_decoder(arrays: dict, path: Path, fix: str, z_size: int) -> None:
    """A shipped V's float16 decoder (decoder.npz) for latents of `z_size`."""
    shapes = {"dec0_w": (z_size, ENCODER_FLAT), "dec0_b": (ENCODER_FLAT,)}
    for i in range(1, 5):
        shapes[f"dec{i}_w"], shapes[f"dec{i}_b"] = (None, None, None, None), (None,)
    _expect(arrays, path, fix, shapes)


def check_rnn(arrays: dict, path: Path, fix: str, z_size: int, action_dim: int | None, units: int | None) -> None:
    """M's numpy weights (rnn.npz) against the z size, action size and LSTM units the configs give."""
    k = arrays.get("num_mixtures")
    if not isinstance(k, np.ndarray) or k.shape != () or not np.issubdtype(k.dtype, np.integer) or int(k) <= 0:
        raise StageError(f"{path}: num_mixtures is missing or not a positive integer; rerun `{fix}`")
    rec = arrays.get("lstm_recurrent")
    u = units if units is not None else (int(rec.shape[0]) if isinstance(rec, np.ndarray) and rec.ndim == 2 else None)
    n_in = None if action_dim is None else z_size + action_dim
    mix = 3 * z_size * int(k)
    shapes = {
        "lstm_kernel": (n_in, 4 * u if u else None),
        "lstm_recurrent": (u, 4 * u if u else None),
        "lstm_bias": (4 * u if u else None,),
        "mdn_w": (u, mix),
        "mdn_b": (mix,),
        "reward_w": (u, 1),
        "reward_b": (1,),
        "done_w": (u, 1),
        "done_b": (1,),
    }
    _expect(arrays, path, fix, shapes)
    if n_in is None and arrays["lstm_kernel"].shape[0] <= z_size:
        raise StageError(
            f"{path}: lstm_kernel has {arrays['lstm_kernel'].shape[0]} inputs for z size {z_size}; rerun `{fix}`"
        )


def check_params(params: np.ndarray, path: Path, fix: str, n_params: int) -> None:
    """C's flat parameters (best.npz "params"): float, [n_params], finite."""
    _expect({"params": params}, path, fix, {"params": (n_params,)})
