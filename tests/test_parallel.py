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


def test_an_engine_whose_pid_never_reached_the_guard_still_dies_with_its_process(tmp_path):
    """A process killed while its engine was starting (before the engine's pid was handed to the
    guard): the guard finds the engine by the token in its environment and kills it."""
    import subprocess
    import sys

    code = (
        "import os, sys, time\n"
        "import worldmodels.envs.doom as doom\n"
        "doom._guard_engines = lambda: None  # the pid is never sent, as if killed first\n"
        "env = doom.make_doom(max_steps=10)\n"
        "env.reset(seed=0)\n"
        "print(doom.engine_pids()[0], flush=True)\n"
        "time.sleep(60)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(p.stdout.readline())
        assert alive(pid)
    finally:
        p.kill()
        p.wait()
    deadline = time.time() + 10
    while alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "the ViZDoom engine outlived the process that started it"
