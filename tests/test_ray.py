"""Stages 1 and 5 on a real local Ray instance (one per test session, 2 CPUs): the same results as
the local worker pool, and a worker killed mid-task does not lose the generation."""

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import ray

from worldmodels.config import Run, make_stage_config
from worldmodels.runtime.pool import TaskPool
from worldmodels.runtime.rollout import evaluate_task, init_worker

pytestmark = pytest.mark.slow  # starts a Ray instance and stage subprocesses

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def ray_session():
    """One private Ray instance for the whole test session; tasks defined here are importable by
    its workers (tests/ on their PYTHONPATH)."""
    path = os.pathsep.join([str(TESTS.parent), str(TESTS)])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path, "SDL_VIDEODRIVER": "dummy", "OMP_NUM_THREADS": "1"}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_run(scripts, tmp_path_factory):
    """Stages 1-4 of the tiny preset (local workers)."""
    data = tmp_path_factory.mktemp("ray") / "carracing"
    for s in scripts.names[:4]:
        scripts.run(s, data)
    return data


def test_stage1_on_ray_equals_local_workers(ray_session, tmp_path):
    from worldmodels.stages.collect import generate_data

    cfg = make_stage_config("collect", "carracing", "tiny", {"episodes": 3, "max_steps": 30})
    local = generate_data(Run("carracing", "tiny", tmp_path / "local", 0, 2), cfg)
    on_ray = generate_data(Run("carracing", "tiny", tmp_path / "ray", 0, 2, ray_address="auto"), cfg)
    names = sorted(f.name for f in local.glob("*.npz"))
    assert len(names) == 3 and names == sorted(f.name for f in on_ray.glob("*.npz"))
    for n in names:
        with np.load(local / n) as a, np.load(on_ray / n) as b:
            for k in a.files:
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{n}:{k}")


def test_stage5_on_ray_equals_local_workers(ray_session, tiny_run):
    from worldmodels.stages.train_controller import train_controller

    results = {}
    for name, address in (("c-local", None), ("c-ray", "auto")):
        cfg = make_stage_config("controller", "carracing", "tiny", {"name": name})
        train_controller(Run("carracing", "tiny", tiny_run, 0, 2, ray_address=address), cfg)
        with open(tiny_run / name / "generations.csv") as f:
            rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]  # wall time differs
        results[name] = (json.loads((tiny_run / name / "eval.json").read_text()), rows)
    assert results["c-local"][0]["real"]["scores"] == results["c-ray"][0]["real"]["scores"]
    assert len(results["c-local"][1]) == 2 and results["c-local"][1] == results["c-ray"][1]


def die_once_then_evaluate(task):
    """Kill this worker process the first time the marked task runs (the marker file records it),
    as a crashed node would; otherwise evaluate the episode."""
    marker, inner = task
    if marker and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return evaluate_task(inner)


def test_a_killed_ray_worker_does_not_lose_the_generation(ray_session, tiny_run, tmp_path):
    vision_cfg = json.loads((tiny_run / "vision" / "config.json").read_text())
    mem_cfg = json.loads((tiny_run / "memory" / "config.json").read_text())
    from worldmodels.models import controller as ctrl

    n = ctrl.param_count(vision_cfg["z_size"], mem_cfg["rnn_size"], 3)
    rng = np.random.default_rng(0)
    gen = [(rng.normal(0, 0.1, n).astype(np.float32), 100 + i % 2, 40, 0) for i in range(6)]
    init = ("carracing", str(tiny_run / "vision"), str(tiny_run / "memory"), "zh", True)
    marker = tmp_path / "killed"
    with TaskPool(2, init_worker, init) as pool:
        expected = pool.map(evaluate_task, gen)
    with TaskPool(2, init_worker, init, ray_address="auto") as pool:
        pids = set(pool.actor_pids())
        got = pool.map(die_once_then_evaluate, [(str(marker) if i == 3 else "", t) for i, t in enumerate(gen)])
        after = set(pool.actor_pids())
    assert marker.exists() and int(marker.read_text()) in pids  # a worker really died mid-generation
    assert int(marker.read_text()) not in after  # and was replaced by a new process
    assert got == expected
