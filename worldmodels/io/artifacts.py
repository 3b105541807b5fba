"""Artifact paths, atomic writes, config.json with fingerprints, and input checks.

Every file is written under a temporary name in its final directory and renamed into place
(os.replace is atomic on POSIX), so a killed stage never leaves a half-written artifact.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCRIPTS = {
    "rollouts": "01_generate_data.py",
    "vision": "02_train_vae.py",
    "series": "03_generate_rnn_data.py",
    "memory": "04_train_rnn.py",
    "controller": "05_train_controller.py",
}


FAULT_ENV = "WORLDMODELS_FAULT"
"""Fault injection for the crash tests: "NAME:N" makes the process SIGKILL itself at the N-th time
it reaches fault_point(NAME). Unset in normal use (then fault_point costs one dict lookup)."""
_fault_counts: dict[str, int] = {}


def fault_point(name: str) -> None:
    """A place where the crash tests may kill the process (see FAULT_ENV)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    want, _, n = spec.partition(":")
    if want == name:
        _fault_counts[name] = _fault_counts.get(name, 0) + 1
        if _fault_counts[name] == int(n):
            os.kill(os.getpid(), signal.SIGKILL)


class StageError(Exception):
    """A stage cannot run: bad or missing input. The message says which file and how to fix it."""


@dataclass(frozen=True)
class Paths:
    """Where each stage's artifacts live under a data directory (data/<env> by default)."""

    root: Path

    @property
    def rollouts(self) -> Path:
        return self.root / "rollouts"

    @property
    def vision(self) -> Path:
        return self.root / "vision"

    @property
    def series(self) -> Path:
        return self.root / "series" / "series.h5"

    @property
    def memory(self) -> Path:
        return self.root / "memory"

    @property
    def controller(self) -> Path:
        return self.root / "controller"


def fix_hint(artifact: str, args: Any = None) -> str:
    """The command that (re)creates an artifact, with the caller's --env/--preset/--data-dir."""
    cmd = f"python {SCRIPTS[artifact]}"
    if args is not None:
        cmd += f" --env {args.env} --preset {args.preset} --data-dir {args.data_dir}"
    return cmd


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on error delete it.

    The temporary name keeps the suffix so libraries that add or check extensions (np.savez, h5py,
    Keras) accept it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        fault_point("write")  # the temporary is complete, the rename has not happened
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def clean_temporaries(directory: Path) -> int:
    """Delete temporaries that a killed run left in `directory` (never a finished artifact)."""
    n = 0
    if Path(directory).is_dir():
        for p in Path(directory).glob(".tmp*"):
            p.unlink(missing_ok=True)
            n += 1
    return n


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot serialise {type(o)}")


def read_json(path: Path, artifact: str, args: Any = None) -> dict:
    """Read a JSON artifact, or raise a StageError naming the file and the script that writes it."""
    if not path.exists():
        raise StageError(f"{path} is missing; run `{fix_hint(artifact, args)}` first")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise StageError(f"{path} is not valid JSON ({e}); rerun `{fix_hint(artifact, args)}`") from e


def arrays_digest(arrays: dict) -> str:
    """Fingerprint of named arrays by content (npz files embed timestamps, so their bytes vary)."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
