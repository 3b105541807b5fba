"""Check a data directory against the artifact contracts (docs/architecture.md).

Usage: worldmodels check DATA_DIR   (or python -m worldmodels.check DATA_DIR; --data-dir DIR works too)
       exits 1 with a list of breaches, or prints a summary
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from worldmodels.cli import add_directory_argument, parse_directory_tool
from worldmodels.cli import build_parser as build_cli_parser
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
    action_dim = _run_action_dim(root)  # rollouts of another env have another action size
    for f in sorted((root / "rollouts").glob("*.npz")) if (root / "rollouts").is_dir() else []:
        try:
            inspect_rollout(f, action_dim)
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
    errors += _training_state_problems(root)
    errors += _cross_problems(root)
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


def _json(path: Path) -> dict | None:
    try:
        obj = json.loads(path.read_text())
        return obj if isinstance(obj, dict) else None
    except (OSError, ValueError):
        return None


def _run_action_dim(root: Path) -> int | None:
    """The action size of the run's env (from its manifest, else V's config), if known."""
    from worldmodels.envs.registry import get_spec, is_known_env

    env = (_json(root / "rollouts" / "manifest.json") or {}).get("env") or (
        _json(root / "vision" / "config.json") or {}
    ).get("env")
    if not isinstance(env, str) or not is_known_env(env):
        return None
    try:
        return get_spec(env).action_dim
    except (ValueError, ImportError):  # a gym env this machine cannot make: its size stays unknown
        return None


def _cross_problems(root: Path) -> list[str]:
    """Artifacts that are each sound but do not belong together: rollouts of another env, a series
    from another V or not M's, V's Keras weights or a checkpoint of other sizes."""
    from collections import Counter

    import h5py

    problems = []
    vision, memory = _json(root / "vision" / "config.json"), _json(root / "memory" / "config.json")
    series = root / "series" / "series.h5"
    if series.exists() and vision and memory:
        try:
            with h5py.File(series, "r") as h:
                if str(h.attrs.get("vision_fingerprint")) != vision.get("fingerprint"):
                    problems.append(f"{series} was encoded by another V than {root / 'vision'}; rerun stage 3")
                elif str(h.attrs.get("fingerprint")) != (memory.get("inputs") or {}).get("series"):
                    problems.append(f"{series} is not the series {root / 'memory'} was trained on; rerun stage 4")
        except OSError:
            pass  # reported as unreadable above
    weights = root / "vision" / "vae.weights.h5"
    if weights.exists() and vision and isinstance(vision.get("z_size"), int):
        try:
            with h5py.File(weights, "r") as h:
                shapes = []
                h.visititems(lambda _, d: shapes.append(d.shape) if isinstance(d, h5py.Dataset) else None)
            if (vision["z_size"], 1024) not in shapes:
                problems.append(
                    f"{weights} does not decode z size {vision['z_size']} (another run's V?); rerun stage 2"
                )
        except OSError:
            pass
    for part, exported in (("vision", "encoder.npz"), ("memory", "rnn.npz")):
        ckpt, ref = root / part / "checkpoint.npz", root / part / exported
        try:
            with np.load(ckpt) as c, np.load(ref) as r:
                have = Counter(c[k].shape for k in c.files if k.startswith("w"))
                need = Counter(r[k].shape for k in r.files if r[k].dtype.kind == "f")
            if need - have:
                problems.append(
                    f"{ckpt} does not hold the weights {ref.name} was exported from (another run's, or "
                    "damaged); delete it to retrain, or rerun the stage"
                )
        except Exception:  # noqa: BLE001 - missing or unreadable files are reported elsewhere
            pass
    return problems


def _training_state_problems(root: Path) -> list[str]:
    """Checkpoints (readable, with their meta, finite), V's Keras weights (a readable HDF5 file) and the
    CMA-ES state (readable, complete): what a rerun would resume from."""
    import h5py

    from worldmodels.runtime.evolution import load_state

    problems = []
    for ckpt in (root / "vision" / "checkpoint.npz", root / "memory" / "checkpoint.npz"):
        if ckpt.exists():
            try:
                with np.load(ckpt) as z:
                    meta = json.loads(str(z["meta"]))
                    if not isinstance(meta, dict) or "settings" not in meta:
                        raise ValueError("no settings in its meta")
                    if not all(np.isfinite(z[k]).all() for k in z.files if z[k].dtype.kind == "f"):
                        raise ValueError("NaN or inf weights")
            except Exception as e:  # noqa: BLE001 - every way a checkpoint can be unreadable
                problems.append(f"{ckpt}: unusable ({type(e).__name__}: {e}); delete it and rerun its stage")
    weights = root / "vision" / "vae.weights.h5"
    if weights.exists():
        try:
            with h5py.File(weights, "r") as f:
                if not len(f.keys()):
                    raise ValueError("no weights in it")
        except (OSError, ValueError) as e:
            problems.append(f"{weights}: unreadable ({e}); rerun stage 2")
    for state in root.glob("*/es_state.pkl"):
        try:
            load_state(state)
        except StageError as e:
            problems.append(str(e))
    return problems


def build_parser():
    return build_cli_parser(
        __doc__, run_flags=("env", "preset", "data_dir"), extra=add_directory_argument, prog="worldmodels check"
    )


def main(argv: list[str] | None = None) -> int:
    root = parse_directory_tool(build_parser(), argv)
    errors = check_data_dir(root, deep=True)
    if errors:
        print("\n".join(errors))
        return 1
    print(f"ok: {root} follows the artifact contracts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
