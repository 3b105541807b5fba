"""Command-line parsing shared by the numbered scripts.

Every script takes the common flags (--env --preset --data-dir --seed --workers) plus one flag per
field of its stage's config; a flag given on the command line overrides the preset's value.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worldmodels.artifacts import StageError
from worldmodels.config import ENVS, PRESET_NAMES, STAGE_CONFIGS, make_stage_config


@dataclass
class RunArgs:
    """The common flags of every stage."""

    env: str
    preset: str
    data_dir: Path
    seed: int
    workers: int
    ray_address: str | None = None


def _add_field(parser: argparse.ArgumentParser, f: dataclasses.Field) -> None:
    flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
    help_text = f.metadata.get("help", "") + " (default: from the preset)"
    if isinstance(f.default, bool):
        parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
    else:
        parser.add_argument(flag, dest=f.name, type=type(f.default), default=None, help=help_text)


def build_parser(stage: str, description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    """An argparse parser with the common flags and one flag per field of `stage`'s config."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = p.add_argument_group("common flags")
    common.add_argument("--env", default="carracing", help=f"environment: {', '.join(ENVS)} (default: carracing)")
    common.add_argument(
        "--preset", default="laptop", help=f"settings preset: {', '.join(PRESET_NAMES)} (default: laptop)"
    )
    common.add_argument("--data-dir", type=Path, default=None, help="artifact directory (default: data/<env>)")
    common.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed and flags give the same results"
    )
    common.add_argument("--workers", type=int, default=None, help="worker processes (default: the number of CPU cores)")
    common.add_argument(
        "--ray-address",
        default=None,
        help="run rollouts and evaluations on Ray: 'auto', 'ray://HOST:10001', or 'local' (a private instance "
        "with --workers CPUs); default: $RAY_ADDRESS if set, else local worker processes",
    )
    common.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    group = p.add_argument_group(f"{stage} settings (override the preset)")
    for f in dataclasses.fields(STAGE_CONFIGS[stage]):
        _add_field(group, f)
    if extra is not None:
        extra(p)
    return p


def parse(
    stage: str, description: str, argv: list[str] | None = None, extra=None
) -> tuple[RunArgs, Any, argparse.Namespace]:
    """Parse argv into (common args, the stage's config, the raw namespace). Exits 2 on bad flags."""
    p = build_parser(stage, description, extra)
    ns = p.parse_args(argv)
    logging.basicConfig(level=ns.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {f.name: getattr(ns, f.name) for f in dataclasses.fields(STAGE_CONFIGS[stage])}
    try:
        cfg = make_stage_config(stage, ns.env, ns.preset, overrides)
    except ValueError as e:
        p.error(str(e))
    workers = ns.workers if ns.workers is not None else (os.cpu_count() or 1)
    if workers <= 0:
        p.error(f"--workers must be positive, got {workers}")
    data_dir = ns.data_dir if ns.data_dir is not None else Path("data") / ns.env
    ray_address = ns.ray_address or os.environ.get("RAY_ADDRESS") or None
    return RunArgs(ns.env, ns.preset, data_dir, ns.seed, workers, ray_address), cfg, ns


def run_stage(fn: Callable[[], Path], args: RunArgs | None = None, stage: str | None = None) -> None:
    """Run a stage's function; turn a StageError (or a full disk) into a clear message and exit 1.

    With args and stage: record the wall time and refresh data/<env>/report.md afterwards.
    """
    t0 = time.time()
    try:
        out = fn()
    except StageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        print(
            f"error: the disk is full ({e.filename or e}); nothing half-written was kept and finished "
            "artifacts are intact: free some space and rerun the same command to resume",
            file=sys.stderr,
        )
        sys.exit(1)
    if args is not None and stage is not None:
        from worldmodels.artifacts import clean_temporaries
        from worldmodels.report import record_timing, write_report

        clean_temporaries(args.data_dir)  # a killed run's timings.json / report.md temporaries
        record_timing(args.data_dir, stage, time.time() - t0)
        print(f"report: {write_report(args.data_dir)}")
    print(f"wrote {out}")
