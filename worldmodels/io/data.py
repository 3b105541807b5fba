"""Rollout and series formats, their validation, and streaming readers with bounded memory.

Rollout `rollouts/<name>.npz`, one episode:
  obs uint8 [T,64,64,3] (the frame seen before acting), action float32 [T,A], reward float32 [T],
  terminated bool [T], truncated bool [T].
Series `series/series.h5`: flat over all steps, mu/logvar float32 [N,z], action float32 [N,A],
  reward float32 [N], terminated bool [N], episode_starts int64 [E+1].
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from worldmodels.config import WINDOWS
from worldmodels.io.artifacts import StageError, atomic_path, text_digest

log = logging.getLogger(__name__)

ROLLOUT_DTYPES = {
    "obs": np.uint8,
    "action": np.float32,
    "reward": np.float32,
    "terminated": np.bool_,
    "truncated": np.bool_,
}
FRAME_SHAPE = (64, 64, 3)


def save_rollout(
    path: Path, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
) -> None:
    """Write one episode atomically, after checking it against the contract."""
    arrays = {
        "obs": np.asarray(obs, np.uint8),
        "action": np.asarray(action, np.float32),
        "reward": np.asarray(reward, np.float32),
        "terminated": np.asarray(terminated, np.bool_),
        "truncated": np.asarray(truncated, np.bool_),
    }
    _check_rollout(arrays, path)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def _check_rollout(arrays: dict[str, np.ndarray], path: Path) -> None:
    missing = sorted(set(ROLLOUT_DTYPES) - set(arrays))
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    T = len(arrays["obs"])
    if T == 0:
        raise ValueError(f"{path}: empty episode")
    if arrays["obs"].shape[1:] != FRAME_SHAPE:
        raise ValueError(f"{path}: obs shape {arrays['obs'].shape}, want [T,64,64,3]")
    for k, dt in ROLLOUT_DTYPES.items():
        if arrays[k].dtype != dt:
            raise ValueError(f"{path}: {k} dtype {arrays[k].dtype}, want {np.dtype(dt)}")
        if len(arrays[k]) != T:
            raise ValueError(f"{path}: {k} has {len(arrays[k])} steps, obs has {T}")
    if arrays["action"].ndim != 2:
        raise ValueError(f"{path}: action shape {arrays['action'].shape}, want [T,A]")
    if not np.all(np.isfinite(arrays["action"])) or not np.all(np.isfinite(arrays["reward"])):
        raise ValueError(f"{path}: action or reward holds NaN or inf")


def recollect_hint(path: Path) -> str:
    """How to replace a bad rollout: delete it and rerun the exact command that collected it (recorded
    in the directory's manifest.json)."""
    from worldmodels.io.artifacts import recorded_command

    cmd = recorded_command("rollouts", Path(path).parent.parent) or "python 01_generate_data.py (with the same flags)"
    return f"delete it and rerun `{cmd}` to collect it again"


def load_rollout(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Read and validate one rollout; a corrupt or malformed file raises StageError naming it."""
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise StageError(f"{path} is corrupt ({type(e).__name__}: {e}); {recollect_hint(path)}") from e
    try:
        _check_rollout(arrays, path)
    except ValueError as e:
        raise StageError(f"{e}; {recollect_hint(path)}") from e
    if keys is not None:
        arrays = {k: arrays[k] for k in keys}
    return arrays


def inspect_rollout(path: Path, action_dim: int | None = None) -> int:
    """Check a rollout's keys, dtypes and shapes from its headers alone (no decompression of the
    frames); return its length. A truncated or malformed file raises StageError naming it."""
    fix = recollect_hint(path)
    try:
        with zipfile.ZipFile(path) as zf:
            headers = {}
            for name in zf.namelist():
                with zf.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(fh)
                headers[name.removesuffix(".npy")] = (shape, dtype)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise StageError(f"{path} is corrupt ({type(e).__name__}: {e}); {fix}") from e
    missing = sorted(set(ROLLOUT_DTYPES) - set(headers))
    if missing:
        raise StageError(f"{path}: missing keys {missing}; {fix}")
    T = headers["obs"][0][0] if headers["obs"][0] else 0
    if T == 0 or tuple(headers["obs"][0][1:]) != FRAME_SHAPE:
        raise StageError(f"{path}: obs shape {headers['obs'][0]}, want [T,64,64,3]; {fix}")
    for k, dt in ROLLOUT_DTYPES.items():
        shape, dtype = headers[k]
        if dtype != np.dtype(dt):
            raise StageError(f"{path}: {k} dtype {dtype}, want {np.dtype(dt)}; {fix}")
        if not shape or shape[0] != T:
            raise StageError(f"{path}: {k} has shape {shape}, obs has {T} steps; {fix}")
    if len(headers["action"][0]) != 2 or (action_dim is not None and headers["action"][0][1] != action_dim):
        want = f"[{T},{action_dim}]" if action_dim is not None else "[T,A]"
        raise StageError(f"{path}: action has shape {headers['action'][0]}, want {want} (another env's?); {fix}")
    try:  # the small arrays are cheap to read whole: no NaN or inf in them
        with np.load(path) as z:
            finite = np.isfinite(z["action"]).all() and np.isfinite(z["reward"]).all()
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise StageError(f"{path} is corrupt ({type(e).__name__}: {e}); {fix}") from e
    if not finite:
        raise StageError(f"{path}: action or reward holds NaN or inf; {fix}")
    return int(T)


def rollout_files(
    rollout_dir: Path, hint: str = "python 01_generate_data.py", action_dim: int | None = None
) -> list[Path]:
    """Sorted rollout files, each checked from its headers (and for `action_dim` when given), or a
    StageError when there are none or one is bad."""
    files = sorted(Path(rollout_dir).glob("*.npz")) if Path(rollout_dir).is_dir() else []
    files = [f for f in files if not f.name.startswith(".")]
    if not files:
        raise StageError(f"no rollouts in {rollout_dir}; run `{hint}` first")
    for f in files:
        inspect_rollout(f, action_dim)
    return files


def split_heldout(files: list[Path], heldout: int) -> tuple[list[Path], list[Path]]:
    """(train, heldout): the last `heldout` files by name are kept out, leaving at least one to train on."""
    heldout = min(heldout, len(files) - 1)
    if heldout <= 0:
        return files, []
    return files[:-heldout], files[-heldout:]


LOADER_THREADS = max(1, min(4, (os.cpu_count() or 1) - 1))
"""Rollout files decompressed ahead in parallel by stage 2's loader (zlib releases the GIL); the
batches do not depend on it."""


def iterate_episodes(files: list[Path], seed: int, epoch: int, threads: int = 1) -> Iterator[np.ndarray]:
    """Yield each file's frames uint8 [T,64,64,3] in an order fixed by (seed, epoch), with up to
    2 x `threads` files decompressed ahead in a thread pool (threads <= 1: one at a time).

    Only those episodes are in memory at once; the caller's shuffle buffer mixes across episodes.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(files))

    def load(i):
        return load_rollout(files[i], keys=("obs",))["obs"]

    if threads <= 1:
        yield from (load(i) for i in order)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="rollout-loader")
    try:
        todo = iter(order)
        ahead = deque(pool.submit(load, i) for i in itertools.islice(todo, 2 * threads))
        while ahead:
            obs = ahead.popleft().result()  # a bad file raises its StageError here, in order
            nxt = next(todo, None)
            if nxt is not None:
                ahead.append(pool.submit(load, nxt))
            yield obs
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """`items` in their order, made up to `depth` ahead by a background thread, so loading overlaps
    training (a Keras step releases the GIL). An exception in the producer is raised here at its place
    in the order; closing this generator (or an error in the consumer) stops the thread and closes
    `items`.

    Close it where it is consumed (`contextlib.closing`): a generator left to the garbage collector is
    finalized in whichever thread the collector runs in, and a thread other than the consumer only
    tells the producer to stop, never waits for it (waiting could deadlock on a thread the producer
    itself waits for, such as a file loader of `items`)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message) -> bool:
        while not stop.is_set():
            try:
                q.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            put(("error", e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    consumer = threading.current_thread()
    try:
        while True:
            kind, value = q.get()
            if kind == "error":
                raise value
            if kind == "done":
                return
            yield value
    finally:
        stop.set()
        if threading.current_thread() is consumer:
            thread.join()


def reference_shuffled_batches(
    files: list[Path], batch_size: int, buffer_size: int, seed: int, epoch: int, max_frames: int = 0
) -> Iterator[np.ndarray]:
    """What `shuffled_batches` yields, by its definition: one frame at a time (stage 2's loader until
    2026-11-30). Kept as the reference its tests and bench/input_pipeline.py compare against."""
    rng = np.random.default_rng([seed, epoch, 1])
    buf: list = [None] * buffer_size
    n, out, emitted = 0, [], 0

    def frames():
        for obs in iterate_episodes(files, seed, epoch):
            yield from obs

    for frame in frames():
        if n < buffer_size:
            buf[n], n = frame, n + 1
            continue
        j = rng.integers(buffer_size)
        out.append(buf[j])
        buf[j] = frame
        if len(out) == batch_size:
            yield np.stack(out)
            out, emitted = [], emitted + batch_size
            if max_frames and emitted >= max_frames:
                return
    for j in rng.permutation(n):
        out.append(buf[j])
        if len(out) == batch_size:
            yield np.stack(out)
            out, emitted = [], emitted + batch_size
            if max_frames and emitted >= max_frames:
                return
    if out:
        yield np.stack(out)


def _swap_through(buf: np.ndarray, frames: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Frame k of `frames` takes buffer slot slots[k] and pushes out what was there, in order (a
    slot drawn twice pushes out the frame that took it first). Returns the pushed-out frames [k];
    `buf` ends as the sequential swaps leave it. Only the slot bookkeeping is a Python loop."""
    src = np.empty(len(slots), np.int64)  # >= 0: index into frames; < 0: -1 - slot of buf as it was
    taken: dict[int, int] = {}
    for k, j in enumerate(slots.tolist()):
        src[k] = taken.get(j, -1 - j)
        taken[j] = k
    out = np.empty((len(slots), *buf.shape[1:]), buf.dtype)
    new = src >= 0
    out[new] = frames[src[new]]
    out[~new] = buf[-1 - src[~new]]
    if taken:
        buf[np.fromiter(taken.keys(), np.int64, len(taken))] = frames[np.fromiter(taken.values(), np.int64, len(taken))]
    return out


def shuffled_batches(
    files: list[Path],
    batch_size: int,
    buffer_size: int,
    seed: int,
    epoch: int,
    max_frames: int = 0,
    threads: int = LOADER_THREADS,
) -> Iterator[np.ndarray]:
    """Batches uint8 [B,64,64,3] from a bounded shuffle buffer over `iterate_episodes`.

    Deterministic for (seed, epoch), whatever `threads`: each frame past the buffer's fill takes a
    uniformly drawn slot and the frame there goes out; at the end the buffer empties in a random
    order. Memory is bounded by buffer_size frames plus the episodes read ahead. The swaps are done a
    whole episode at a time (`_swap_through`); the batches are those of swapping frame by frame.
    """
    rng = np.random.default_rng([seed, epoch, 1])
    buf = np.empty((buffer_size, *FRAME_SHAPE), np.uint8)
    n = 0
    pending: list[np.ndarray] = []
    held = emitted = 0

    def batches(chunk: np.ndarray | None):
        nonlocal held, emitted
        if chunk is not None and len(chunk):
            pending.append(chunk)
            held += len(chunk)
        while held >= batch_size or (chunk is None and held):
            parts, need = [], batch_size
            while need and pending:  # only the frames this batch takes are copied
                head = pending[0]
                parts.append(head[:need])
                if len(head) > need:
                    pending[0] = head[need:]
                else:
                    pending.pop(0)
                need -= len(parts[-1])
            batch = np.concatenate(parts) if len(parts) > 1 else parts[0]
            held -= len(batch)
            yield batch
            emitted += len(batch)
            if max_frames and emitted >= max_frames:
                return

    def capped() -> bool:
        return bool(max_frames) and emitted >= max_frames

    for obs in iterate_episodes(files, seed, epoch, threads):
        k = min(buffer_size - n, len(obs))
        buf[n : n + k] = obs[:k]
        n += k
        rest = obs[k:]
        if len(rest):
            yield from batches(_swap_through(buf, rest, rng.integers(buffer_size, size=len(rest))))
            if capped():
                return
    yield from batches(buf[rng.permutation(n)])
    if not capped():
        yield from batches(None)


SERIES_KEYS = ("mu", "logvar", "action", "reward", "terminated", "episode_starts")


def write_series(path: Path, part_files: list[Path], attrs: dict[str, str]) -> int:
    """Concatenate per-episode encodings (npz with mu, logvar, action, reward, terminated) into
    series.h5 atomically, holding one episode in memory at a time. Returns the number of steps."""
    import h5py

    lengths = []
    first = None
    for pf in part_files:
        with np.load(pf) as z:
            lengths.append(len(z["mu"]))
            if first is None:
                first = {k: (z[k].shape[1:], z[k].dtype) for k in ("mu", "logvar", "action", "reward", "terminated")}
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(starts[-1])
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, (shape, dtype) in first.items():
                chunk_rows = max(1, min(n, 1024))
                f.create_dataset(k, shape=(n, *shape), dtype=dtype, chunks=(chunk_rows, *shape))
            f.create_dataset("episode_starts", data=starts)
            for a_key, a_val in attrs.items():
                f.attrs[a_key] = a_val
            for i, pf in enumerate(part_files):
                with np.load(pf) as z:
                    for k in first:
                        f[k][starts[i] : starts[i + 1]] = z[k]
    return n


def open_series(path: Path, hint: str):
    """Open series.h5 read-only and check it (keys, shapes that agree, episode boundaries, finite
    values); a StageError names the file, what is wrong and the fix."""
    import h5py

    if not Path(path).exists():
        raise StageError(f"{path} is missing; run `{hint}` first")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise StageError(f"{path} is unreadable ({e}); delete it and rerun `{hint}`") from e
    try:
        problem = series_problem(f)
    except (OSError, KeyError, ValueError, TypeError) as e:
        problem = f"unreadable ({type(e).__name__}: {e})"
    if problem:
        f.close()
        raise StageError(f"{path}: {problem}; delete it and rerun `{hint}`")
    return f


def series_problem(f, chunk: int = 1 << 16) -> str | None:
    """What is wrong with an open series.h5 (None when it follows the contract)."""
    missing = [k for k in SERIES_KEYS if k not in f]
    if missing:
        return f"lacks {missing}"
    mu, n = f["mu"], len(f["mu"])
    if mu.ndim != 2 or f["logvar"].shape != mu.shape:
        return f"mu {mu.shape} and logvar {f['logvar'].shape} must both be [N,z]"
    if f["action"].ndim != 2 or len(f["action"]) != n:
        return f"action has shape {f['action'].shape}, want [{n},A]"
    for k in ("reward", "terminated"):
        if f[k].shape != (n,):
            return f"{k} has shape {f[k].shape}, want [{n}]"
    starts = f["episode_starts"][:]
    if starts.ndim != 1 or len(starts) < 2 or starts[0] != 0 or starts[-1] != n or np.any(np.diff(starts) <= 0):
        return "episode_starts must rise strictly from 0 to the number of steps"
    for k in ("mu", "logvar", "action", "reward"):
        for i in range(0, n, chunk):
            if not np.all(np.isfinite(f[k][i : i + chunk])):
                return f"{k} holds NaN or inf"
    return None


def rollout_digest(path: Path) -> str:
    """Fingerprint of a rollout's arrays by content, read from its zip directory alone (each member's
    CRC-32 and size): the same episode saved again (other timestamps) has the same digest."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = sorted((i.filename, i.CRC, i.file_size) for i in zf.infolist())
    except (OSError, zipfile.BadZipFile) as e:
        raise StageError(f"{path} is corrupt ({type(e).__name__}: {e}); {recollect_hint(path)}") from e
    return text_digest(repr(members))


def rollouts_fingerprint(files: list[Path]) -> str:
    """Cheap fingerprint of a set of rollouts: names and sizes (contents are immutable once written)."""
    return text_digest("\n".join(f"{f.name}:{f.stat().st_size}" for f in files))


def heldout_frames(files: list[Path], n: int = 512) -> np.ndarray:
    """Up to n frames uint8 [n,64,64,3] spread evenly over the held-out rollouts."""
    frames = []
    per_file = max(1, n // max(1, len(files)))
    for f in files:
        obs = load_rollout(f, keys=("obs",))["obs"]
        idx = np.linspace(0, len(obs) - 1, min(per_file, len(obs))).astype(int)
        frames.append(obs[idx])
    return np.concatenate(frames)[:n] if frames else np.zeros((0, 64, 64, 3), np.uint8)


class SeriesSampler:
    """Random windows of `seq_len` steps from series.h5, read from disk per batch (bounded memory).

    A batch: mu, logvar float32 [B,L+1,z]; action [B,L,a]; reward, terminated, mask, zmask float32 [B,L].
    Windows shorter than L (short episodes, episode ends) are zero-padded; mask marks real steps and
    zmask the steps whose next z exists (the last step of an episode has none).

    `windows` says where a window of an episode of T steps may start. 'inside': at 0 .. T-L, so it
    lies inside the episode; a step k from the end (k < L) is then in k+1 of the T-L+1 windows and a
    middle step in L: the terminated step is in 1/L as many windows as a middle one. 'all-steps': at
    -(L-1) .. T-1, clipped to the episode (a window that starts before it begins at its first step,
    from M's zero state, as an episode does), so every step is in exactly L of the T+L-1 windows.
    """

    def __init__(self, f, episodes: np.ndarray, seq_len: int, windows: str = "inside"):
        if windows not in WINDOWS:
            raise ValueError(f"windows must be one of {', '.join(WINDOWS)}, got {windows!r}")
        self.f, self.episodes, self.seq_len, self.windows = f, episodes, seq_len, windows
        self.starts = f["episode_starts"][:]
        self.z_size = f["mu"].shape[1]
        self.action_dim = f["action"].shape[1]

    def batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        L, z, a = self.seq_len, self.z_size, self.action_dim
        out = {
            "mu": np.zeros((batch_size, L + 1, z), np.float32),
            "logvar": np.zeros((batch_size, L + 1, z), np.float32),
            "action": np.zeros((batch_size, L, a), np.float32),
            "reward": np.zeros((batch_size, L), np.float32),
            "terminated": np.zeros((batch_size, L), np.float32),
            "mask": np.zeros((batch_size, L), np.float32),
            "zmask": np.zeros((batch_size, L), np.float32),
        }
        eps = rng.choice(self.episodes, size=batch_size)
        for b, e in enumerate(eps):
            s0, s1 = int(self.starts[e]), int(self.starts[e + 1])
            T = s1 - s0
            if self.windows == "inside":
                s = s0 + int(rng.integers(0, max(0, T - L) + 1))
                n = min(L, s1 - s)
            else:
                start = int(rng.integers(-(L - 1), T))  # a window [start, start+L) clipped to [0, T)
                s = s0 + max(0, start)
                n = min(start + L, T) - max(0, start)
            nz = min(n + 1, s1 - s)
            out["mu"][b, :nz] = self.f["mu"][s : s + nz]
            out["logvar"][b, :nz] = self.f["logvar"][s : s + nz]
            out["action"][b, :n] = self.f["action"][s : s + n]
            out["reward"][b, :n] = self.f["reward"][s : s + n]
            out["terminated"][b, :n] = self.f["terminated"][s : s + n]
            out["mask"][b, :n] = 1.0
            out["zmask"][b, : nz - 1] = 1.0
        return out
