#!/usr/bin/env python
"""Kill each stage at many moments, rerun the same command, and check nothing was lost.

For every stage of the tiny pipeline: copy the inputs of an uninterrupted baseline run, start the
stage, kill it (a deterministic fault point via WORLDMODELS_FAULT, e.g. inside an artifact write,
mid-epoch, mid-generation, in a worker; or a SIGKILL of the whole process group after a delay),
rerun the same command without the fault, then check that the rerun completed, every artifact
validates, and the stage's result equals the baseline's: rollouts, series, V and M weights, the
controller and its scores, bit for bit.

Usage:  python tests/fault_harness.py            (all of it: 10+ kills per stage)
        python tests/fault_harness.py --quick    (two per stage; what `make test` runs)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from worldmodels.io.artifacts import SCRIPTS as STAGE_SCRIPTS  # noqa: E402
from worldmodels.tools.check import check_data_dir  # noqa: E402

SCRIPTS = list(STAGE_SCRIPTS.values())  # the five numbered scripts, in order
OUTPUTS = [["rollouts"], ["vision"], ["series"], ["memory"], ["controller"]]
# Fault points per stage: where (a named point in the code) and at which hit. "write" is inside an
# artifact write (temporary complete, not yet renamed); "episode" in stages 1 and 5 kills a worker.
FAULTS = {
    0: ["episode:1", "write:2", "episode:2", "write:3", "write:1"],
    1: ["batch:3", "write:1", "batch:10", "write:3", "batch:11"],
    2: ["episode:1", "write:2", "episode:4", "write:5", "write:6"],
    3: ["step:4", "write:1", "step:12", "write:3", "step:19"],
    4: ["generation:1", "write:2", "episode:3", "generation:2", "write:7"],
}
QUICK = {
    0: ["write:2", "episode:2"],
    1: ["write:1", "batch:10"],
    2: ["write:2", "episode:4"],
    3: ["step:12", "write:3"],
    4: ["generation:2", "write:2"],
}
DELAY_FRACTIONS = (0.2, 0.4, 0.6, 0.75, 0.9)


def command(script: str, data: Path) -> list[str]:
    return [
        sys.executable,
        str(ROOT / script),
        "--preset",
        "tiny",
        "--data-dir",
        str(data),
        "--seed",
        "0",
        "--workers",
        "2",
        "--log-level",
        "WARNING",
    ]


def environ(fault: str | None = None) -> dict:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("WORLDMODELS_FAULT", None)
    env["WORLDMODELS_WORKER_RESTARTS"] = "0"  # a killed worker ends the run: the rerun must resume it
    if fault:
        env["WORLDMODELS_FAULT"] = fault
    return env


def live_members(pgid: int, wait: float = 2.0) -> list[int]:
    """Processes of group `pgid` still alive (zombies excluded) after up to `wait` seconds."""
    deadline = time.time() + wait
    while True:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(stat.parent.name))
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.1)


def run(script: str, data: Path, fault: str | None = None, kill_after: float | None = None) -> tuple[int, float]:
    """Run a stage in its own process group; returns (exit code, seconds). SIGKILLs the whole group
    after `kill_after` seconds if given. Sets run.orphans when workers outlived the main process."""
    t0 = time.time()
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(
            command(script, data),
            cwd=ROOT,
            env=environ(fault),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
        try:
            p.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        run.orphans = bool(live_members(p.pid))
        if run.orphans:
            os.killpg(p.pid, signal.SIGKILL)
        err.seek(0)
        run.last_stderr = err.read()
    return p.returncode, time.time() - t0


def arrays_of(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def csv_without_times(path: Path) -> list[dict]:
    """Rows of a metrics CSV without wall times, numbers rounded to 6 significant digits.

    Weights are compared bit for bit; the logged loss means may differ in the 7th digit: TensorFlow's
    multi-threaded CPU reductions sum in an order that depends on thread scheduling (seen in stage
    4's logged losses while its weights stayed identical)."""

    def norm(v: str) -> str:
        try:
            return f"{float(v):.6g}"
        except ValueError:
            return v

    with open(path) as fh:
        return [{k: norm(v) for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def compare(stage: int, base: Path, other: Path) -> list[str]:
    """Differences between a stage's results in two data dirs (empty when equal)."""
    diffs = []

    def same_arrays(a: dict, b: dict, what: str):
        if a.keys() != b.keys() or any(not np.array_equal(a[k], b[k]) for k in a):
            diffs.append(f"{what} differ")

    if stage == 0:
        names = sorted(p.name for p in (base / "rollouts").glob("*.npz"))
        if names != sorted(p.name for p in (other / "rollouts").glob("*.npz")):
            diffs.append("rollout files differ")
        for n in names:
            same_arrays(arrays_of(base / "rollouts" / n), arrays_of(other / "rollouts" / n), f"rollouts/{n}")
    elif stage == 1:
        same_arrays(arrays_of(base / "vision/encoder.npz"), arrays_of(other / "vision/encoder.npz"), "V weights")
        if csv_without_times(base / "vision/metrics.csv") != csv_without_times(other / "vision/metrics.csv"):
            diffs.append("vision/metrics.csv differs")
    elif stage == 2:
        with h5py.File(base / "series/series.h5") as a, h5py.File(other / "series/series.h5") as b:
            same_arrays({k: a[k][:] for k in a}, {k: b[k][:] for k in b}, "series.h5")
    elif stage == 3:
        same_arrays(arrays_of(base / "memory/rnn.npz"), arrays_of(other / "memory/rnn.npz"), "M weights")
        if csv_without_times(base / "memory/metrics.csv") != csv_without_times(other / "memory/metrics.csv"):
            diffs.append("memory/metrics.csv differs")
    else:
        same_arrays(arrays_of(base / "controller/best.npz"), arrays_of(other / "controller/best.npz"), "C")
        a = json.loads((base / "controller/eval.json").read_text())
        b = json.loads((other / "controller/eval.json").read_text())
        if a["real"]["scores"] != b["real"]["scores"]:
            diffs.append("held-out scores differ")
        if csv_without_times(base / "controller/generations.csv") != csv_without_times(
            other / "controller/generations.csv"
        ):
            diffs.append("generations.csv differs")
    return diffs


def make_baseline(work: Path) -> tuple[Path, list[float]]:
    base = work / "base"
    durations = []
    for s in SCRIPTS:
        rc, dt = run(s, base)
        if rc != 0:
            raise SystemExit(f"baseline {s} failed:\n{run.last_stderr}")
        durations.append(dt)
    return base, durations


def trial(work: Path, base: Path, stage: int, label: str, fault: str | None, kill_after: float | None) -> dict:
    d = work / f"s{stage}_{label.replace(':', '_')}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for earlier in range(stage):
        for name in OUTPUTS[earlier]:
            shutil.copytree(base / name, d / name)
    rc, _ = run(SCRIPTS[stage], d, fault=fault, kill_after=kill_after)
    interrupted = rc != 0
    orphans = run.orphans
    rc2, _ = run(SCRIPTS[stage], d)
    problems = ["worker processes outlived the killed stage"] if orphans else []
    if rc2 != 0:
        problems.append(f"rerun failed ({rc2}): {run.last_stderr[-1500:]}")
    else:
        problems += check_data_dir(d, deep=True)
        problems += compare(stage, base, d)
    return {"stage": stage + 1, "kill": label, "interrupted": interrupted, "first_rc": rc, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="two kills per stage")
    p.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--work-dir", type=Path, default=None)
    a = p.parse_args(argv)
    work = a.work_dir or Path(tempfile.mkdtemp(prefix="wm_faults_"))
    base, durations = make_baseline(work)
    results = []
    for stage in [s - 1 for s in a.stages]:
        plan = [(f, f, None) for f in (QUICK if a.quick else FAULTS)[stage]]
        if not a.quick:
            plan += [(f"t{frac:.2f}", None, frac * durations[stage]) for frac in DELAY_FRACTIONS]
        for label, fault, delay in plan:
            r = trial(work, base, stage, label, fault, delay)
            results.append(r)
            status = "ok" if not r["problems"] and r["interrupted"] else "FAIL"
            print(
                f"stage {r['stage']} kill {label:14s} interrupted={r['interrupted']!s:5s} "
                f"rerun+checks: {status} {'; '.join(r['problems'])}",
                flush=True,
            )
    kills = sum(r["interrupted"] for r in results)
    bad = [r for r in results if r["problems"] or not r["interrupted"]]
    print(f"{len(results)} kills tried, {kills} interrupted a run, {len(bad)} failed")
    shutil.rmtree(work, ignore_errors=True) if not bad and a.work_dir is None else None
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
