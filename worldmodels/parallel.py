"""Map tasks over worker processes (spawn start method: TensorFlow is not fork-safe).

`TaskPool` keeps its workers for its lifetime, so stage 5 pays the start-up (imports, loading
weights) once rather than every generation. With one worker it runs tasks in this process.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tqdm import tqdm

from worldmodels.artifacts import StageError


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this worker when its parent dies, so a killed stage never
    leaves orphaned workers behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_init(initializer: Callable | None, initargs: tuple) -> None:
    _die_with_parent()
    if initializer is not None:
        initializer(*initargs)


class TaskPool:
    """A pool of `workers` spawned processes, each set up once by initializer(*initargs)."""

    def __init__(self, workers: int, initializer: Callable | None = None, initargs: tuple = ()):
        self.workers = workers
        self.initializer, self.initargs = initializer, initargs
        self._executor: ProcessPoolExecutor | None = None
        self._inline_ready = False

    def __enter__(self) -> TaskPool:
        if self.workers > 1:
            # One BLAS thread per worker: the workers already fill the cores.
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ.setdefault(var, "1")
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
                initargs=(self.initializer, self.initargs),
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def map(
        self, fn: Callable[[Any], Any], tasks: Sequence[Any], desc: str | None = None, progress: bool = True
    ) -> list[Any]:
        """fn(task) for every task, results in task order, with a progress bar."""
        bar = tqdm(total=len(tasks), desc=desc, disable=not progress or desc is None, leave=False)
        try:
            if self._executor is None:
                if not self._inline_ready and self.initializer is not None:
                    self.initializer(*self.initargs)
                    self._inline_ready = True
                out = []
                for t in tasks:
                    out.append(fn(t))
                    bar.update()
                return out
            try:
                futures = [self._executor.submit(fn, t) for t in tasks]
                for f in futures:
                    f.add_done_callback(lambda _: bar.update())
                return [f.result() for f in futures]
            except BrokenProcessPool as e:
                raise StageError(
                    "a worker process died (killed, or out of memory); everything finished so far is saved: "
                    "rerun the same command to resume"
                ) from e
        finally:
            bar.close()
