"""Map tasks over worker processes: a local pool (the default) or a Ray cluster.

`TaskPool` keeps its workers for its lifetime, so stage 5 pays the start-up (imports, loading
weights) once rather than every generation.

- Local (`ray_address=None`): `workers` processes started with the spawn method (TensorFlow is
  not fork-safe), killed by the kernel if the stage dies. If a worker dies, the pool starts again
  and reruns the unfinished tasks (once per map by default). With one worker, tasks run in this
  process.
- Ray (`ray_address` = "auto", "ray://HOST:10001", any address `ray.init` takes, or "local" for a
  private Ray instance with `workers` CPUs started here and shut down on exit): one actor per CPU
  the cluster has when the pool starts, or `workers` if that is more (an autoscaling cluster then
  adds nodes), each set up once by the initializer. An actor whose
  process dies is restarted (on any node) and its unfinished task retried, so a lost worker costs
  time, not the generation. If this process was already connected to Ray, the pool uses that
  connection and leaves it open.

Either way results come back in task order, and a task's result depends only on the task, so the
same seeds give the same results on either backend and with any number of workers.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tqdm import tqdm

from worldmodels.io.artifacts import StageError
from worldmodels.runtime.blas_kernel import CORETYPE_ENV

log = logging.getLogger(__name__)
RESTARTS_ENV = "WORLDMODELS_WORKER_RESTARTS"
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


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


class _RayWorker:
    """A Ray actor: set up once by the initializer, then runs tasks."""

    def __init__(self, initializer: Callable | None, initargs: tuple):
        if initializer is not None:
            initializer(*initargs)

    def run(self, fn: Callable[[Any], Any], task: Any) -> Any:
        return fn(task)

    def pid(self) -> int:
        return os.getpid()


class TaskPool:
    """A pool of workers, each set up once by initializer(*initargs): local processes or Ray actors."""

    def __init__(
        self,
        workers: int,
        initializer: Callable | None = None,
        initargs: tuple = (),
        ray_address: str | None = None,
        restarts: int | None = None,
        finalizer: Callable[[], None] | None = None,
    ):
        """finalizer: undoes the initializer when tasks ran in this process (one worker), e.g. closes
        the envs it built; worker processes and actors simply end."""
        self.workers = workers
        self.finalizer = finalizer
        # How often a local pool whose worker died starts again within one map (the crash tests set
        # WORLDMODELS_WORKER_RESTARTS=0 to see the death itself).
        self.restarts = int(os.environ.get(RESTARTS_ENV, 1)) if restarts is None else restarts
        self.initializer, self.initargs = initializer, initargs
        self.ray_address = ray_address
        self._executor: ProcessPoolExecutor | None = None
        self._inline_ready = False
        self._actors: list = []
        self._ray_started = False
        self._saved_env: dict[str, str | None] = {}

    def _start_ray(self) -> None:
        try:
            import ray
        except ImportError as e:
            raise StageError("--ray-address needs the `ray` package: pip install -r requirements.txt") from e
        if not ray.is_initialized():
            env_vars = {
                "SDL_VIDEODRIVER": "dummy",
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
            }
            # The actors' OpenBLAS runs the kernel this process pinned (runtime/blas_kernel.py).
            if os.environ.get(CORETYPE_ENV):
                env_vars[CORETYPE_ENV] = os.environ[CORETYPE_ENV]
            try:
                if self.ray_address == "local":
                    ray.init(
                        num_cpus=self.workers,
                        include_dashboard=False,
                        log_to_driver=False,
                        runtime_env={"env_vars": env_vars},
                    )
                else:
                    ray.init(address=self.ray_address, log_to_driver=False, runtime_env={"env_vars": env_vars})
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise StageError(
                    f"cannot reach a Ray cluster at {self.ray_address!r} ({e}); start one (`ray start --head`, "
                    "docs/cluster.md) or drop --ray-address to use local workers"
                ) from e
            self._ray_started = True
        # A cluster gets one actor per CPU it has now, or --workers if more (an autoscaler adds nodes).
        cpus = int(ray.available_resources().get("CPU", 0))
        n = self.workers if self.ray_address == "local" else max(cpus, self.workers)
        actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(_RayWorker)
        self._actors = [actor.remote(self.initializer, self.initargs) for _ in range(max(1, n))]

    @property
    def size(self) -> int:
        """How many tasks run at once: the Ray actors, or the local workers."""
        return len(self._actors) or self.workers

    def actor_pids(self) -> list[int]:
        """The process id of each Ray actor (tests kill one)."""
        import ray

        return ray.get([a.pid.remote() for a in self._actors])

    def __enter__(self) -> TaskPool:
        if self.ray_address is not None:
            self._start_ray()
        elif self.workers > 1:
            # One BLAS thread per worker: the workers already fill the cores. Spawned workers inherit
            # the variables; they are put back as they were when the pool closes.
            for var in BLAS_THREAD_VARS:
                self._saved_env[var] = os.environ.get(var)
                os.environ.setdefault(var, "1")
            self._executor = self._new_executor()
        return self

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
            initargs=(self.initializer, self.initargs),
        )

    def __exit__(self, *exc) -> None:
        if self._inline_ready and self.finalizer is not None:
            self._inline_ready = False
            self.finalizer()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        for var, value in self._saved_env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        self._saved_env = {}
        if self._actors:
            import ray

            for a in self._actors:
                ray.kill(a)
            self._actors = []
            if self._ray_started:
                ray.shutdown()

    def map(
        self,
        fn: Callable[[Any], Any],
        tasks: Sequence[Any],
        desc: str | None = None,
        progress: bool = True,
        units: Sequence[int] | None = None,
    ) -> list[Any]:
        """fn(task) for every task, results in task order, with a progress bar that counts tasks, or
        units[i] for task i (a task that is a batch of episodes counts its episodes)."""
        units = list(units) if units is not None else [1] * len(tasks)
        bar = tqdm(total=sum(units), desc=desc, disable=not progress or desc is None, leave=False)
        try:
            if self._actors:
                return self._map_ray(fn, tasks, bar, units)
            if self._executor is None:
                if not self._inline_ready:
                    if self.initializer is not None:
                        self.initializer(*self.initargs)
                    self._inline_ready = True
                out = []
                for t, n in zip(tasks, units):
                    out.append(fn(t))
                    bar.update(n)
                return out
            return self._map_local(fn, tasks, bar, units)
        finally:
            bar.close()

    def _map_local(self, fn: Callable[[Any], Any], tasks: Sequence[Any], bar, units: list[int]) -> list[Any]:
        """On the local pool. A worker that dies breaks the pool: it is started again (up to
        `restarts` times per map) and the unfinished tasks run again, so a lost worker costs time,
        not the stage."""
        results: dict[int, Any] = {}
        restarts = 0
        while True:
            todo = [i for i in range(len(tasks)) if i not in results]
            futures = {i: self._executor.submit(fn, tasks[i]) for i in todo}
            for i, f in futures.items():
                f.add_done_callback(lambda _, n=units[i]: bar.update(n))
            try:
                for i, f in futures.items():
                    results[i] = f.result()
                return [results[i] for i in range(len(tasks))]
            except BrokenProcessPool as e:
                for i, f in futures.items():  # keep what finished before the pool broke
                    if f.done() and not f.cancelled() and f.exception() is None:
                        results[i] = f.result()
                bar.n = sum(units[i] for i in results)
                bar.refresh()
                if restarts >= self.restarts:
                    raise StageError(
                        "a worker process died (killed, or out of memory)"
                        + (f" {restarts + 1} times" if restarts else "")
                        + "; everything finished so far is saved: rerun the same command to resume"
                    ) from e
                restarts += 1
                log.warning(
                    "a worker process died (killed, or out of memory); restarting the pool and running its "
                    "%d unfinished tasks again (restart %d of %d)",
                    len(tasks) - len(results),
                    restarts,
                    self.restarts,
                )
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = self._new_executor()

    def _map_ray(self, fn: Callable[[Any], Any], tasks: Sequence[Any], bar, units: list[int]) -> list[Any]:
        """On Ray's ActorPool: every actor busy with one task at a time, results in task order. A dead
        actor is restarted by Ray and its task retried (max_restarts / max_task_retries above)."""
        import ray
        from ray.util import ActorPool

        results = []
        try:
            for r in ActorPool(self._actors).map(lambda actor, task: actor.run.remote(fn, task), tasks):
                bar.update(units[len(results)])
                results.append(r)
        except ray.exceptions.RayError as e:
            raise StageError(
                f"a Ray task failed ({type(e).__name__}: {e}); everything finished so far is saved: "
                "rerun the same command to resume"
            ) from e
        return results
