"""Artifact paths, atomic writes, config.json with fingerprints, and input checks.

Every file is written under a temporary name in its final directory and renamed into place
(os.replace is atomic on POSIX), so a killed stage never leaves a half-written artifact.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
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


RECORDS = {
    "rollouts": "rollouts/manifest.json",
    "vision": "vision/config.json",
    "memory": "memory/config.json",
    "controller": "controller/config.json",
}
"""Where each artifact records the command that made it (its "command" field)."""


def command_line(script: str, run: Any) -> str:
    """The shell command (quoted) that runs `script` for `run`: the flags the user gave when known
    (run.argv), else --env, --preset, --data-dir and a non-default --seed."""
    argv = getattr(run, "argv", None)
    if argv is not None:
        return shlex.join(["python", script, *argv])
    parts = ["python", script, "--env", run.env, "--preset", run.preset, "--data-dir", str(run.data_dir)]
    if run.seed:
        parts += ["--seed", str(run.seed)]
    return shlex.join(parts)


def recorded_command(artifact: str, data_dir: Path) -> str | None:
    """The command recorded in an artifact's own metadata (what made it, with every flag), if any."""
    record = Path(data_dir) / RECORDS.get(artifact, "-")
    try:
        cmd = json.loads(record.read_text()).get("command")
        argv = shlex.split(cmd)
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    if len(argv) < 2 or argv[0] != "python":
        return None
    # The directory may have been moved or copied since: point the command at where it is now.
    for flag in ("--data-dir", "--model-dir"):
        if flag in argv[:-1]:
            argv[argv.index(flag) + 1] = str(data_dir)
            break
    else:
        argv += ["--data-dir", str(data_dir)]
    return shlex.join(argv)


def fix_hint(artifact: str, args: Any = None) -> str:
    """The exact command that (re)creates an artifact: the one recorded with it when it exists, else
    its script with the caller's --env, --preset, --data-dir and --seed, shell-quoted."""
    if args is None:
        return f"python {SCRIPTS[artifact]}"
    recorded = recorded_command(artifact, args.data_dir)
    if recorded is not None:
        return recorded
    fields = ("env", "preset", "data_dir", "seed")
    if all(hasattr(args, f) for f in fields):
        return command_line(SCRIPTS[artifact], SimpleNamespace(**{f: getattr(args, f) for f in fields}))
    return f"python {SCRIPTS[artifact]} --data-dir {shlex.quote(str(args.data_dir))}"


def one_writer(what: str | Callable[[Any], str], artifact: str):
    """Decorate a stage core fn(run, cfg): it runs holding the data directory's lock for `what` (a
    name, or a function of cfg), so two processes never run the same stage on one directory."""

    def decorate(fn):
        @functools.wraps(fn)
        def locked(run, cfg, *args, **kwargs):
            name = what(cfg) if callable(what) else what
            command = command_line(SCRIPTS[artifact], run)
            with exclusive(run.data_dir, name, command):
                output = Path(run.data_dir) / (name if artifact == "controller" else OUTPUT_DIRS[artifact])
                ensure_writable(output, command, create=False)  # fail now, not after the work
                return fn(run, cfg, *args, **kwargs)

        return locked

    return decorate


OUTPUT_DIRS = {"rollouts": "rollouts", "vision": "vision", "series": "series", "memory": "memory"}


def ensure_writable(directory: Path, rerun: str = "", create: bool = True) -> None:
    """Fail now, before any long work, if `directory` cannot be written (created first if `create`;
    otherwise, when it does not exist yet, its nearest existing parent must be writable)."""
    directory = Path(directory)
    if not create:
        while not directory.exists() and directory.parent != directory:
            directory = directory.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".tmp{os.getpid()}-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise StageError(
            f"cannot write to {directory} ({e.strerror or e}); fix its permissions or free space, or choose "
            f"another directory{', then rerun `' + rerun + '`' if rerun else ''}"
        ) from e


@contextlib.contextmanager
def exclusive(directory: Path, what: str, command: str = "") -> Iterator[None]:
    """Hold `directory`'s lock for `what` (a stage, a controller name) while the body runs; another
    live process holding it makes this a StageError naming that process. The lock is an flock, so a
    killed process never leaves it stuck."""
    directory = Path(directory)
    ensure_writable(directory, command)
    path = directory / f".lock-{what}"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StageError(
                f"another process is already running {what} on {directory} ({holder}); wait for it to end "
                "or stop it, then rerun"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino  # not a lock file a releaser just removed
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}: {command or ' '.join(sys.argv)}".encode(), 0)
    try:
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)


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


def controller_fingerprint(params) -> str:
    """A controller's fingerprint, as stage 5 records it in controller/config.json."""
    return arrays_digest({"params": np.asarray(params, np.float32)})


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
