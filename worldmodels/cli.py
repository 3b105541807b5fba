"""The command-line layer: one parser builder for every command, one flag vocabulary.

Every command (the five stages and every tool) is built by `build_parser` from the same flags, with
the same names, meanings and defaults:

  --env --preset --data-dir --seed --workers --envs-per-worker --ray-address --log-level   (the run)
  --episodes --seed-offset --max-steps --fast-env/--no-fast-env --out    (scoring and filming)

A stage adds one flag per field of its config (a flag given overrides the preset's value). Old
spellings stay as hidden aliases: --model-dir (for --data-dir), --fast and --stock (for --fast-env and
--no-fast-env). Nothing below this module imports it: stages take a `config.Run` and their config.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from worldmodels.config import (
    ENVS,
    ENVS_PER_WORKER,
    PRESET_NAMES,
    STAGE_CONFIGS,
    Run,
    default_data_dir,
    make_stage_config,
    preset_table,
)
from worldmodels.io.artifacts import StageError
from worldmodels.io.seeding import EVAL_SEED_BASE, FINAL_SEED_BASE, SEED_RANGES, TRAIN_SEED_RANGE, seed_range

RUN_FLAGS = ("env", "preset", "data_dir", "seed", "workers", "ray_address")
SCORING_FLAGS = ("episodes", "seed_offset", "max_steps", "fast_env", "out")


def _add_run_flags(p: argparse.ArgumentParser, flags: Sequence[str], env_default: str) -> None:
    g = p.add_argument_group("common flags")
    if "env" in flags:
        g.add_argument(
            "--env",
            default=env_default,
            type=_env_name,
            help=f"environment: {', '.join(ENVS)}, or gym:<id> for any gymnasium env with image observations "
            f"(default: {env_default})",
        )
        g.add_argument("--env-kwargs", type=_json_object, help="gym:<id> only: JSON keyword arguments for gym.make")
        g.add_argument("--import", dest="env_import", help="gym:<id> only: a module to import that registers the id")
        g.add_argument(
            "--obs",
            help="gym:<id> only: where the image is: 'auto' (the observation, or the one image in a dict), "
            "'render' (the env's render()), 'key:NAME' (a dict observation's entry)",
        )
        g.add_argument(
            "--crop",
            type=int,
            nargs=4,
            metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
            help="gym:<id> only: pixels cut from each side of the frame before it is resized to 64x64",
        )
    if "preset" in flags:
        g.add_argument("--preset", default="laptop", choices=PRESET_NAMES, help="settings preset (default: laptop)")
    if "data_dir" in flags:
        g.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="the run's directory: a data directory or a shipped bundle (default: data/<env> for the laptop "
            "preset, data/<env>-<preset> for the others, as `make run` uses)",
        )
        g.add_argument("--model-dir", dest="data_dir", type=Path, help=argparse.SUPPRESS)
    if "seed" in flags:
        g.add_argument("--seed", type=int, default=0, help="random seed; the same seed and flags give the same results")
    if "workers" in flags:
        g.add_argument("--workers", type=int, default=None, help="worker processes (default: the number of CPU cores)")
        g.add_argument(
            "--envs-per-worker",
            type=int,
            default=ENVS_PER_WORKER,
            help="episodes each worker steps in lockstep, one agent call per step for all "
            f"(default: {ENVS_PER_WORKER}; 1 plays one episode at a time); results do not depend on it",
        )
    if "ray_address" in flags:
        g.add_argument(
            "--ray-address",
            default=None,
            help="run episodes on Ray: 'auto', 'ray://HOST:10001', or 'local' (a private instance with --workers "
            "CPUs); default: $RAY_ADDRESS if set, else local worker processes",
        )
    g.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")


def _add_scoring_flags(p: argparse.ArgumentParser, flags: Sequence[str], episodes: int, fast_env: bool) -> None:
    g = p.add_argument_group("scoring flags")
    if "episodes" in flags:
        g.add_argument("--episodes", type=int, default=episodes, help=f"number of episodes (default: {episodes})")
    if "seed_offset" in flags:
        g.add_argument(
            "--seed-offset",
            type=int,
            default=None,
            help="the first env seed: episodes use seeds S .. S+N-1 (default: the first seed of --seed-range)",
        )
        g.add_argument(
            "--seed-range",
            choices=("development", "final"),
            default="development",
            help=f"held-out env seeds: 'development' (from {EVAL_SEED_BASE}: every choice is judged there) or "
            f"'final' (from {FINAL_SEED_BASE}: only to score an agent about to ship, once); training uses seeds "
            f"below {TRAIN_SEED_RANGE} (default: development)",
        )
    if "max_steps" in flags:
        g.add_argument(
            "--max-steps", type=int, default=None, help="cap on steps per episode (default: the benchmark's per env)"
        )
    if "fast_env" in flags:
        which = "the fast renderer" if fast_env else "the stock gymnasium env, the benchmark"
        g.add_argument(
            "--fast-env",
            action=argparse.BooleanOptionalAction,
            default=fast_env,
            help=f"carracing: the pixel-identical fast renderer, or --no-fast-env the stock env (default: {which})",
        )
        g.add_argument("--fast", dest="fast_env", action="store_true", help=argparse.SUPPRESS)
        g.add_argument("--stock", dest="fast_env", action="store_false", help=argparse.SUPPRESS)
    if "out" in flags:
        g.add_argument("--out", type=Path, default=None, help="where to write the result (default: per command)")


def _add_config_field(parser: argparse._ArgumentGroup, f: dataclasses.Field) -> None:
    flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
    help_text = f.metadata.get("help", "") + " (default: from the preset)"
    if isinstance(f.default, bool):
        parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
    else:
        parser.add_argument(flag, dest=f.name, type=type(f.default), default=None, help=help_text)


def build_parser(
    description: str | None,
    stage: str | None = None,
    run_flags: Sequence[str] = RUN_FLAGS,
    scoring_flags: Sequence[str] = (),
    episodes: int = 100,
    fast_env: bool = False,
    env_default: str = "carracing",
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    prog: str | None = None,
) -> argparse.ArgumentParser:
    """The parser of one command: the run's flags, the scoring flags it takes, one flag per field of
    `stage`'s config, then the command's own (`extra`)."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_run_flags(p, run_flags, env_default)
    if scoring_flags:
        _add_scoring_flags(p, scoring_flags, episodes, fast_env)
    p.set_defaults(scoring_flags=tuple(scoring_flags))
    if stage is not None:
        group = p.add_argument_group(f"{stage} settings (override the preset)")
        for f in dataclasses.fields(STAGE_CONFIGS[stage]):
            _add_config_field(group, f)
        p.epilog = (
            f"The presets' {stage} settings that differ (worldmodels/config.py; each flag above overrides "
            f"its value):\n\n{preset_table(stage)}"
        )
    if extra is not None:
        extra(p)
    return p


def setup_logging(level: str = "INFO") -> None:
    """Logging for a command's process; also quiets TensorFlow's C++ start-up messages unless the user
    chose a level (this process is the command's own, so nothing else sees the variable change)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def resolve_run(p: argparse.ArgumentParser, ns: argparse.Namespace) -> Run:
    """The `Run` the common flags describe (defaults filled in), after checking them; exits 2 on bad flags."""
    env = _with_gym_options(p, ns, getattr(ns, "env", "carracing"))
    preset = getattr(ns, "preset", "laptop")
    data_dir = getattr(ns, "data_dir", None) or default_data_dir(env, preset)
    workers = getattr(ns, "workers", None)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    require(p, "--workers", workers, "positive")
    envs_per_worker = getattr(ns, "envs_per_worker", ENVS_PER_WORKER)
    require(p, "--envs-per-worker", envs_per_worker, "positive")
    ray_address = getattr(ns, "ray_address", None) or os.environ.get("RAY_ADDRESS") or None
    seed = getattr(ns, "seed", 0)
    if seed < 0 or seed >= 2**32:
        p.error(f"--seed must be in [0, 2^32), got {seed}")
    argv = tuple(getattr(ns, "argv", None) or ())
    return Run(env, preset, Path(data_dir), seed, workers, ray_address, argv, envs_per_worker)


def _env_name(text: str) -> str:
    """--env: one of the tuned envs, or gym:<id> (optionally with its options' JSON, as artifacts record it)."""
    if text in ENVS:
        return text
    if text.startswith("gym:"):
        from worldmodels.envs.gym_env import parse_name

        try:
            parse_name(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from e
        return text
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(ENVS)}, or gym:<id>)")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"frameskip\": 4}'")
    return value


def _with_gym_options(p: argparse.ArgumentParser, ns: argparse.Namespace, env: str) -> str:
    """The env's canonical name with --env-kwargs, --import, --obs and --crop folded in."""
    given = {k: getattr(ns, k, None) for k in ("env_kwargs", "env_import", "obs", "crop")}
    if not any(v is not None for v in given.values()):
        return env
    if not env.startswith("gym:"):
        p.error("--env-kwargs, --import, --obs and --crop apply to --env gym:<id> only")
    from worldmodels.envs.gym_env import compose_name, parse_name

    env_id, options = parse_name(env)
    try:
        name = compose_name(
            env_id,
            given["env_kwargs"] if given["env_kwargs"] is not None else options.get("kwargs"),
            given["env_import"] or options.get("import"),
            given["obs"] or options.get("obs", "auto"),
            given["crop"] or options.get("crop"),
        )
        parse_name(name)
    except ValueError as e:
        p.error(str(e))
    return name


def require(p: argparse.ArgumentParser, flag: str, value: float, rule: str) -> None:
    """Exit 2 with the project's one wording when `value` breaks `rule` ('positive', '>= 0', 'probability')."""
    ok = {"positive": value > 0, ">= 0": value >= 0, "probability": 0 <= value <= 1}[rule]
    if not ok:
        p.error(f"{flag} must be {'in [0, 1]' if rule == 'probability' else rule}, got {value}")


def add_directory_argument(p: argparse.ArgumentParser) -> None:
    """A positional DATA_DIR, the same as --data-dir (for `check` and `report`)."""
    p.add_argument("directory", nargs="?", type=Path, help="the data directory (same as --data-dir)")


def parse_directory_tool(p: argparse.ArgumentParser, argv: list[str] | None = None) -> Path:
    """Parse a tool that works on one existing data directory (positional or --data-dir); exits 2 when
    it is not a directory."""
    run, ns = parse_tool(p, argv)
    root = ns.directory or run.data_dir
    if not root.is_dir():
        p.error(f"{root} is not a directory")
    return root


def check_scoring_flags(p: argparse.ArgumentParser, ns: argparse.Namespace, env: str) -> None:
    """Fill --max-steps's per-env default and reject counts and seeds that cannot work (exit 2)."""
    flags = getattr(ns, "scoring_flags", ())
    if "max_steps" in flags and ns.max_steps is None:
        from worldmodels.envs.registry import get_spec

        ns.max_steps = get_spec(env).benchmark_steps
    for name in ("episodes", "max_steps"):
        if name in flags and getattr(ns, name, None) is not None:
            require(p, f"--{name.replace('_', '-')}", getattr(ns, name), "positive")
    if "seed_offset" in flags:
        n = getattr(ns, "episodes", 1)
        if ns.seed_offset is None:
            ns.seed_offset = SEED_RANGES[ns.seed_range][0]
        if not 0 <= ns.seed_offset <= 2**32 - 1 - n:
            p.error(f"--seed-offset is the first env seed, in [0, 2^32 - 1 - episodes]; got {ns.seed_offset}")
        try:
            ns.seed_range = seed_range(ns.seed_offset, n)
        except ValueError as e:
            p.error(f"--seed-offset {ns.seed_offset} with --episodes {n}: {e}")
        if ns.seed_range == "training":
            logging.getLogger(__name__).warning(
                "--seed-offset %d: seeds below %d are training seeds, not held out", ns.seed_offset, TRAIN_SEED_RANGE
            )


def parse(
    stage: str,
    description: str | None,
    argv: list[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
    prog: str | None = None,
) -> tuple[Run, Any, argparse.Namespace]:
    """Parse a stage-like command's argv into (the run, the stage's config, the raw namespace). Exits 2 on bad flags."""
    p = build_parser(description, stage, extra=extra, prog=prog)
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = p.parse_args(argv)
    ns.argv = argv
    setup_logging(ns.log_level)
    overrides = {f.name: getattr(ns, f.name) for f in dataclasses.fields(STAGE_CONFIGS[stage])}
    try:
        cfg = make_stage_config(stage, ns.env, ns.preset, overrides)
    except ValueError as e:
        p.error(str(e))
    return resolve_run(p, ns), cfg, ns


def parse_tool(p: argparse.ArgumentParser, argv: list[str] | None = None) -> tuple[Run, argparse.Namespace]:
    """Parse a tool's argv (a parser from build_parser) into (the run, the namespace). Exits 2 on bad flags."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = p.parse_args(argv)
    ns.argv = argv
    setup_logging(getattr(ns, "log_level", "INFO"))
    run = resolve_run(p, ns)
    check_scoring_flags(p, ns, run.env)
    return run, ns


class Terminated(Exception):
    """SIGTERM arrived (a scheduler, `kill`, a container stopping): handled like Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


INTERRUPTED = (
    "finished artifacts are kept (every file is written whole or not at all, and each stage saves its "
    "progress as it goes); rerun the same command to resume"
)

OS_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "a file or directory is missing",
    errno.ENOTDIR: "a path is not a directory",
    errno.EISDIR: "a path is a directory",
}


def report_errors(fn: Callable[[], Any]) -> int:
    """Run a command's body; what can go wrong becomes one message on stderr and an exit status, never a
    traceback: a StageError or an operating-system error (disk full, read-only, permission denied,
    missing directory) exits 1, Ctrl-C 130, SIGTERM 143; each says what was kept and how to resume."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if _main_thread() else None
    try:
        fn()
    except StageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated) as e:
        which = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
        print(f"\ninterrupted ({which}): {INTERRUPTED}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except OSError as e:
        if e.errno not in OS_ERRORS:
            raise
        where = f" ({e.filename})" if e.filename else ""
        print(
            f"error: {OS_ERRORS[e.errno]}{where}: {e.strerror or e}; nothing half-written was kept and finished "
            "artifacts are intact: fix it (free space, permissions, the path) and rerun the same command to resume",
            file=sys.stderr,
        )
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def run_stage(fn: Callable[[], Path], run: Run | None = None, stage: str | None = None) -> None:
    """Run a stage's function and exit 1 with a clear message if it fails (see report_errors).

    With run and stage: record the wall time and refresh <data-dir>/report.md afterwards.
    """
    t0 = time.time()
    result: dict[str, Path] = {}
    status = report_errors(lambda: result.setdefault("out", fn()))
    if status:
        sys.exit(status)
    if run is not None and stage is not None:
        from worldmodels.io.artifacts import clean_temporaries
        from worldmodels.tools.report import record_timing, write_report

        clean_temporaries(run.data_dir)  # a killed run's timings.json / report.md temporaries
        record_timing(run.data_dir, stage, time.time() - t0)
        print(f"report: {write_report(run.data_dir)}")
    print(f"wrote {result['out']}")


# The five stages: config name, the function (module, name) that runs it, and its name in timings.json.
STAGES = {
    "collect": ("collect", ("worldmodels.stages.collect", "generate_data"), "01 collect"),
    "train-vae": ("vision", ("worldmodels.stages.train_vae", "train_vae"), "02 vision"),
    "encode": ("encode", ("worldmodels.stages.encode", "encode_rollouts"), "03 encode"),
    "train-rnn": ("memory", ("worldmodels.stages.train_rnn", "train_rnn"), "04 memory"),
    "train-controller": ("controller", ("worldmodels.stages.train_controller", "train_controller"), "05 controller"),
}


def stage_main(name: str, argv: list[str] | None = None, description: str | None = None) -> int:
    """A stage as a command (the numbered scripts, `worldmodels <stage>`): parse, run, report."""
    import importlib

    config_name, (module, fn_name), timing_name = STAGES[name]
    run, cfg, _ = parse(config_name, description, argv, prog=f"worldmodels {name}")
    fn = getattr(importlib.import_module(module), fn_name)
    run_stage(lambda: fn(run, cfg), run, timing_name)
    return 0
