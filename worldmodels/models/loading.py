"""Loading a run's (or a shipped bundle's) models from disk, checked against each other.

One place for what stages 3-5 and the tools all need: V's and M's configs (with the checks that
they belong together), the Keras V, the numpy agent (V-encoder, M, C) in a directory, and C's
parameters. Every failure is a StageError that names the file and the command that fixes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from worldmodels.io.artifacts import Paths, StageError, fix_hint, read_json


def load_vision(run: Any, need_keras: bool = False) -> tuple[dict, Any]:
    """vision/config.json of `run` (a config.Run), checked to be for run.env, and the Keras V if asked."""
    paths = Paths(run.data_dir)
    cfg = read_json(paths.vision / "config.json", "vision", run)
    if cfg.get("env") != run.env:
        raise StageError(
            f"{paths.vision} holds a V for {cfg.get('env')!r}, not {run.env!r}; run `{fix_hint('vision', run)}`"
        )
    if not need_keras:
        return cfg, None
    from worldmodels.models.vae import load_vae

    return cfg, load_vae(paths.vision, cfg["z_size"], cfg["kl_tolerance"])


def load_memory(run: Any, vision_cfg: dict) -> dict:
    """memory/config.json of `run`, checked against V (same fingerprint and z size) and for its weights."""
    paths = Paths(run.data_dir)
    mem = read_json(paths.memory / "config.json", "memory", run)
    if mem["inputs"]["vision"] != vision_cfg["fingerprint"]:
        raise StageError(
            f"{paths.memory} was trained on a series from another vision model; rerun "
            f"`{fix_hint('series', run)}` then `{fix_hint('memory', run)}`"
        )
    if mem["z_size"] != vision_cfg["z_size"]:
        raise StageError(
            f"{paths.memory} has z size {mem['z_size']} but V has {vision_cfg['z_size']}; "
            f"rerun `{fix_hint('memory', run)}`"
        )
    if not (paths.memory / "rnn.npz").exists() or not (paths.vision / "encoder.npz").exists():
        raise StageError(f"weights missing in {paths.vision} or {paths.memory}; rerun stages 2 and 4")
    return mem


def load_controller(model_dir: Path, env: str, name: str = "controller") -> tuple[dict, np.ndarray]:
    """(controller/config.json, the chosen parameters float32 [n]) of the agent in `model_dir`."""
    c_dir = Paths(Path(model_dir)).root / name
    cfg = read_json(c_dir / "config.json", "controller")
    if cfg.get("env") != env:
        raise StageError(f"{c_dir} holds a controller for {cfg.get('env')!r}, not {env!r}")
    best = c_dir / "best.npz"
    if not best.exists():
        raise StageError(f"{best} is missing; run `{fix_hint('controller')} --data-dir {model_dir}` first")
    with np.load(best) as z:
        params = np.asarray(z["params"], np.float32)
    return cfg, params


def load_agent(model_dir: Path, env: str):
    """The trained agent in `model_dir` (vision/, memory/, controller/) as a numpy Agent (no TensorFlow)."""
    from worldmodels.envs.registry import get_spec
    from worldmodels.models.numpy_agent import Agent, NumpyEncoder, NumpyMDNRNN, load_npz

    paths = Paths(Path(model_dir))
    cfg, params = load_controller(model_dir, env)
    spec = get_spec(env)
    return Agent(
        NumpyEncoder(load_npz(paths.vision / "encoder.npz")),
        NumpyMDNRNN(load_npz(paths.memory / "rnn.npz")),
        params,
        cfg["inputs"],
        spec.map_actions,
        spec.controller_outputs,
    )
