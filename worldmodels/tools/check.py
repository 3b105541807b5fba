"""Check a data directory against the artifact contracts (docs/architecture.md).

Usage: worldmodels check DATA_DIR   (or python -m worldmodels.check DATA_DIR; --data-dir DIR works too)
       exits 1 with a list of breaches, or prints a summary
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from worldmodels.cli import build_parser as build_cli_parser
from worldmodels.cli import parse_tool
from worldmodels.io.artifacts import StageError
from worldmodels.io.data import inspect_rollout, load_rollout, series_problem
from worldmodels.models.loading import validate_run


def check_data_dir(root: Path, deep: bool = False) -> list[str]:
    """Every breach of the contracts found under `root` (empty when all is well).

    deep=True also decompresses every rollout (catches corrupt frames, not just headers).
    """
    errors: list[str] = []
    root = Path(root)
    leftovers = [p for p in root.rglob(".tmp*")]
    errors += [f"{p}: a temporary file left behind" for p in leftovers]
    for f in sorted((root / "rollouts").glob("*.npz")) if (root / "rollouts").is_dir() else []:
        try:
            inspect_rollout(f)
            if deep:
                ep = load_rollout(f)
                if ep["terminated"][:-1].any() or ep["truncated"][:-1].any():
                    errors.append(f"{f}: the episode ends before its last step")
        except StageError as e:
            errors.append(str(e))
    series = root / "series" / "series.h5"
    if series.exists():
        import h5py

        try:
            with h5py.File(series, "r") as h:
                problem = series_problem(h)
            if problem:
                errors.append(f"{series}: {problem}")
        except (OSError, KeyError, ValueError) as e:
            errors.append(f"{series}: unreadable ({e})")
    errors += validate_run(root)  # V, M and C: configs, weights, and that they fit each other
    for part in ("vision", "memory", "controller"):
        d = root / part
        if d.is_dir() and (d / "config.json").exists():
            try:
                cfg = json.loads((d / "config.json").read_text())
                if "fingerprint" not in cfg:
                    errors.append(f"{d}/config.json: no fingerprint")
            except (OSError, ValueError) as e:
                errors.append(f"{d}/config.json: {e}")
        elif d.is_dir() and not list(d.glob(".lock-*")):
            errors.append(f"{d}/config.json is missing: the stage did not finish; rerun it")
    ev = root / "controller" / "eval.json"
    if ev.exists():
        try:
            scores = json.loads(ev.read_text())["real"]["scores"]
            if not scores or not np.all(np.isfinite(scores)):
                errors.append(f"{ev}: scores missing or not finite")
        except (OSError, ValueError, KeyError) as e:
            errors.append(f"{ev}: {e}")
    return errors


def build_parser():
    def extra(p):
        p.add_argument("directory", nargs="?", type=Path, help="the data directory (same as --data-dir)")

    return build_cli_parser(__doc__, run_flags=("env", "preset", "data_dir"), extra=extra, prog="worldmodels check")


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    run, a = parse_tool(p, argv)
    root = a.directory or run.data_dir
    if not root.is_dir():
        p.error(f"{root} is not a directory")
    errors = check_data_dir(root, deep=True)
    if errors:
        print("\n".join(errors))
        return 1
    print(f"ok: {root} follows the artifact contracts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
