"""The local worker pool: a worker that dies is replaced and its unfinished tasks run again; past
the allowed restarts the stage stops with a clear error; a dead worker's game engine dies with it."""

import os
import signal
import time
from pathlib import Path

import pytest

from worldmodels.io.artifacts import StageError
from worldmodels.runtime.pool import TaskPool


def square_or_die(task):
    """x*x, except that the task carrying a marker path kills its worker the first time it runs."""
    marker, x = task
    if marker and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def test_a_dead_worker_is_replaced_and_its_tasks_rerun(tmp_path):
    marker = tmp_path / "killed"
    tasks = [(str(marker) if i == 5 else "", i) for i in range(12)]
    with TaskPool(2, restarts=1) as pool:
        got = pool.map(square_or_die, tasks)
    assert marker.exists()  # a worker really died
    assert got == [i * i for i in range(12)]


def test_past_the_restarts_a_dead_worker_is_a_clear_error(tmp_path):
    tasks = [(str(tmp_path / "killed") if i == 1 else "", i) for i in range(4)]
    with pytest.raises(StageError, match="worker process died.*rerun the same command"):
        with TaskPool(2, restarts=0) as pool:
            pool.map(square_or_die, tasks)


def start_engine_then_die(marker):
    """Start a VizDoom engine, write its pid, then die as a crashed worker would."""
    from worldmodels.envs.doom import engine_pids, make_doom

    env = make_doom()
    env.reset(seed=0)
    (pid,) = engine_pids()
    Path(marker).write_text(str(pid))
    os.kill(os.getpid(), signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the engine guard uses Linux /proc")
def test_a_dead_workers_game_engine_dies_with_it(tmp_path):
    marker = tmp_path / "engine"
    with pytest.raises(StageError):
        with TaskPool(2, restarts=0) as pool:
            pool.map(start_engine_then_die, [str(marker)])
    pid = int(marker.read_text())
    deadline = time.time() + 10
    while alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "the ViZDoom engine outlived its worker"
