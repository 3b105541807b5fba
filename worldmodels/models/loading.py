"""Loading a run's (or a shipped bundle's) models from disk, validated and checked against each other.

One place for what stages 3-5 and the tools all need: V's and M's configs (with the checks that
they belong together), their numpy weights, the Keras V, C's parameters, and the numpy agent (V-encoder,
M, C) of a directory. Every failure is a StageError that names the file, what is wrong and the command
that fixes it; `worldmodels check` runs the same validation (`validate_run`).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from worldmodels.io.artifacts import Paths, StageError, fix_hint, read_json
from worldmodels.io.validate import check_decoder, check_encoder, check_params, check_rnn, read_npz

CONFIG_KEYS = {
    "vision": {"env": str, "z_size": int, "kl_tolerance": (int, float), "fingerprint": str},
    "memory": {"env": str, "z_size": int, "rnn_size": int, "num_mixtures": int, "fingerprint": str, "inputs": dict},
    "controller": {"env": str, "inputs": str, "n_params": int, "z_size": int, "rnn_size": int, "outputs": int},
}


def _as_run(run_or_dir: Any) -> Any:
    return run_or_dir if hasattr(run_or_dir, "data_dir") else SimpleNamespace(data_dir=Path(run_or_dir))


def read_config(run: Any, part: str, name: str | None = None) -> dict:
    """<data-dir>/<part>/config.json with the keys and types every reader relies on."""
    run = _as_run(run)
    path = Paths(run.data_dir).root / (name or part) / "config.json"
    cfg = read_json(path, part, run)
    if not isinstance(cfg, dict):
        raise StageError(f"{path} does not hold a JSON object; rerun `{fix_hint(part, run)}`")
    label = {"vision": "V", "memory": "M", "controller": "controller"}[part]
    if getattr(run, "env", None) is not None and isinstance(cfg.get("env"), str) and cfg["env"] != run.env:
        raise StageError(
            f"{path.parent} holds a {label} for {cfg['env']!r}, not {run.env!r}; run `{fix_hint(part, run)}`"
        )
    for key, kind in CONFIG_KEYS[part].items():
        v = cfg.get(key)
        if not isinstance(v, kind) or isinstance(v, bool) or (isinstance(v, float) and not np.isfinite(v)):
            raise StageError(
                f"{path}: {key!r} is missing or not a finite {getattr(kind, '__name__', 'number')}; "
                f"rerun `{fix_hint(part, run)}`"
            )
        if kind is int and v <= 0:
            raise StageError(f"{path}: {key!r} is {v}, want a positive size; rerun `{fix_hint(part, run)}`")
    return cfg


def load_vision(run: Any, need_keras: bool = False) -> tuple[dict, Any]:
    """vision/config.json of `run` (a config.Run), checked to be for run.env, and the Keras V if asked."""
    cfg = read_config(run, "vision")
    if not need_keras:
        return cfg, None
    from worldmodels.models.vae import load_vae

    vision = Paths(run.data_dir).vision
    try:
        return cfg, load_vae(vision, cfg["z_size"], cfg["kl_tolerance"])
    except StageError:
        raise
    except Exception as e:  # noqa: BLE001 - Keras and h5py raise many kinds for a bad weights file
        raise StageError(
            f"V's weights in {vision} are unreadable or do not fit z size {cfg['z_size']} "
            f"({type(e).__name__}: {str(e)[:300]}); rerun `{fix_hint('vision', run)}`"
        ) from e


def load_encoder(run: Any, vision_cfg: dict) -> dict[str, np.ndarray]:
    """V's numpy encoder (vision/encoder.npz), validated against vision/config.json."""
    run = _as_run(run)
    path = Paths(run.data_dir).vision / "encoder.npz"
    fix = fix_hint("vision", run)
    arrays = read_npz(path, fix)
    check_encoder(arrays, path, fix, vision_cfg["z_size"])
    return arrays


def load_decoder(run: Any, vision_cfg: dict) -> dict[str, np.ndarray]:
    """V's decoder weights as numpy arrays (dec0 the dense layer, dec1-4 the deconvolutions): from a
    shipped bundle's vision/decoder.npz, or read from a run's vision/vae.weights.h5 with h5py (no
    TensorFlow)."""
    run = _as_run(run)
    vision, fix = Paths(run.data_dir).vision, fix_hint("vision", run)
    if (vision / "decoder.npz").exists():
        path, arrays = vision / "decoder.npz", read_npz(vision / "decoder.npz", fix)
    else:
        import h5py

        path = vision / "vae.weights.h5"
        try:
            with h5py.File(path, "r") as f:
                arrays = {"dec0_w": f["dec_dense/vars/0"][:], "dec0_b": f["dec_dense/vars/1"][:]}
                names = sorted(f["deconvs"], key=lambda n: int(n.rsplit("_", 1)[1]) if n[-1].isdigit() else 0)
                for i, name in enumerate(names, start=1):
                    arrays[f"dec{i}_w"], arrays[f"dec{i}_b"] = (
                        f[f"deconvs/{name}/vars/0"][:],
                        f[f"deconvs/{name}/vars/1"][:],
                    )
        except (OSError, KeyError, ValueError) as e:
            raise StageError(f"{path} holds no readable V decoder ({type(e).__name__}: {e}); rerun `{fix}`") from e
    check_decoder(arrays, path, fix, vision_cfg["z_size"])
    return arrays


def load_memory(run: Any, vision_cfg: dict) -> dict:
    """memory/config.json of `run`, checked against V (same fingerprint and z size)."""
    paths = Paths(run.data_dir)
    mem = read_config(run, "memory")
    if mem["inputs"].get("vision") != vision_cfg["fingerprint"]:
        raise StageError(
            f"{paths.memory} was trained on a series from another vision model than {paths.vision / 'config.json'}; "
            "rerun "
            f"`{fix_hint('series', run)}` then `{fix_hint('memory', run)}`"
        )
    if mem["z_size"] != vision_cfg["z_size"]:
        raise StageError(
            f"{paths.memory} has z size {mem['z_size']} but V has {vision_cfg['z_size']} "
            f"({paths.vision / 'config.json'}); "
            f"rerun `{fix_hint('memory', run)}`"
        )
    return mem


def load_rnn(run: Any, mem_cfg: dict) -> dict[str, np.ndarray]:
    """M's numpy weights (memory/rnn.npz), validated against memory/config.json."""
    run = _as_run(run)
    path = Paths(run.data_dir).memory / "rnn.npz"
    fix = fix_hint("memory", run)
    arrays = read_npz(path, fix)
    check_rnn(arrays, path, fix, mem_cfg["z_size"], mem_cfg.get("action_dim"), mem_cfg["rnn_size"])
    if int(arrays["num_mixtures"]) != mem_cfg["num_mixtures"]:
        raise StageError(
            f"{path} has {int(arrays['num_mixtures'])} mixtures, its config {mem_cfg['num_mixtures']}; rerun `{fix}`"
        )
    return arrays


def load_controller(
    model_dir: Path, env: str, name: str = "controller", cfg: dict | None = None
) -> tuple[dict, np.ndarray]:
    """(controller/config.json, the chosen parameters float32 [n]) of the agent in `model_dir`
    (`cfg`: that config when the caller has read it already)."""
    run = SimpleNamespace(data_dir=Path(model_dir), env=env)
    cfg = cfg if cfg is not None else read_config(run, "controller", name)
    best = Paths(Path(model_dir)).root / name / "best.npz"
    fix = fix_hint("controller", SimpleNamespace(data_dir=Path(model_dir)))
    arrays = read_npz(best, fix)
    if "params" not in arrays:
        raise StageError(f"{best} lacks 'params'; rerun `{fix}`")
    check_params(arrays["params"], best, fix, cfg["n_params"])
    return cfg, np.asarray(arrays["params"], np.float32)


def load_agent_weights(model_dir: Path, env: str, name: str = "controller") -> dict:
    """Every weight the numpy agent of `model_dir` needs, validated and checked against each other:
    {"vision", "memory", "controller"} configs, {"encoder", "rnn"} arrays, "params"."""
    run = SimpleNamespace(data_dir=Path(model_dir), env=env)
    c_cfg = read_config(run, "controller", name)  # first: the controller is what is asked for (and its env)
    paths = Paths(Path(model_dir))
    v_cfg = read_config(SimpleNamespace(data_dir=Path(model_dir), env=None), "vision")
    if v_cfg["env"] != env:
        raise StageError(
            f"{paths.root / name / 'config.json'} is a controller for {env!r} but {paths.vision} holds a V for "
            f"{v_cfg['env']!r}: they are not one agent; rerun `{fix_hint('controller', run)}`"
        )
    encoder = load_encoder(run, v_cfg)
    m_cfg = load_memory(run, v_cfg)
    rnn = load_rnn(run, m_cfg)
    c_cfg, params = load_controller(model_dir, env, name, c_cfg)
    c_path = Paths(Path(model_dir)).root / name / "config.json"
    if (c_cfg["z_size"], c_cfg["rnn_size"]) != (v_cfg["z_size"], m_cfg["rnn_size"]):
        raise StageError(
            f"{c_path} is a controller for z size {c_cfg['z_size']} and {c_cfg['rnn_size']} LSTM units, but V and M "
            f"here have {v_cfg['z_size']} and {m_cfg['rnn_size']}; rerun `{fix_hint('controller', run)}`"
        )
    return {"vision": v_cfg, "memory": m_cfg, "controller": c_cfg, "encoder": encoder, "rnn": rnn, "params": params}


def agent_fingerprints(weights: dict) -> dict[str, str]:
    """The fingerprints of V, M and C of an agent (what load_agent_weights returned), as results record them."""
    from worldmodels.io.artifacts import controller_fingerprint

    return {
        "vision_fingerprint": weights["vision"]["fingerprint"],
        "memory_fingerprint": weights["memory"]["fingerprint"],
        "controller_fingerprint": controller_fingerprint(weights["params"]),
    }


def load_agent(model_dir: Path, env: str, weights: dict | None = None):
    """The trained agent in `model_dir` (vision/, memory/, controller/) as a numpy Agent (no TensorFlow);
    `weights`: what load_agent_weights returned, when the caller has it already."""
    from worldmodels.envs.registry import get_spec
    from worldmodels.models.numpy_agent import Agent, NumpyEncoder, NumpyMDNRNN

    w = weights if weights is not None else load_agent_weights(model_dir, env)
    spec = get_spec(env)
    return Agent(
        NumpyEncoder(w["encoder"]),
        NumpyMDNRNN(w["rnn"]),
        w["params"],
        w["controller"]["inputs"],
        spec.map_actions,
        spec.controller_outputs,
    )


def load_dream_starts(run: Any, mem_cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) [E,z] of each real episode's first frame, from the series M was trained on (dreams
    start there); a series that is not M's is refused."""
    from worldmodels.io.data import open_series

    run = _as_run(run)
    series = Paths(run.data_dir).series
    with open_series(series, fix_hint("series", run)) as f:
        if str(f.attrs.get("fingerprint")) != mem_cfg["inputs"].get("series"):
            raise StageError(f"{series} is not the series M was trained on; rerun `{fix_hint('memory', run)}`")
        if f["mu"].shape[1] != mem_cfg["z_size"]:
            raise StageError(
                f"{series} has z size {f['mu'].shape[1]} but M has {mem_cfg['z_size']}; "
                f"rerun `{fix_hint('series', run)}`"
            )
        starts = f["episode_starts"][:-1]
        return f["mu"][starts], f["logvar"][starts]


def validate_run(model_dir: Path) -> list[str]:
    """Every problem the loaders would find in the models of `model_dir` (empty when all load)."""
    run = SimpleNamespace(data_dir=Path(model_dir))
    paths, problems = Paths(Path(model_dir)), []

    def attempt(fn):
        try:
            return fn()
        except StageError as e:
            problems.append(str(e))
            return None

    v_cfg = attempt(lambda: read_config(run, "vision")) if paths.vision.is_dir() else None
    if v_cfg is not None:
        attempt(lambda: load_encoder(run, v_cfg))
        if (paths.vision / "decoder.npz").exists() and not (paths.vision / "vae.weights.h5").exists():
            dec = paths.vision / "decoder.npz"
            attempt(
                lambda: check_decoder(
                    read_npz(dec, fix_hint("vision", run)), dec, fix_hint("vision", run), v_cfg["z_size"]
                )
            )
    m_cfg = attempt(lambda: read_config(run, "memory")) if paths.memory.is_dir() else None
    if m_cfg is not None:
        attempt(lambda: load_rnn(run, m_cfg))
        if v_cfg is not None:
            attempt(lambda: load_memory(run, v_cfg))
    if paths.controller.is_dir():
        c_cfg = attempt(lambda: read_config(run, "controller"))
        if c_cfg is not None:
            attempt(lambda: load_controller(Path(model_dir), c_cfg["env"]))
            if v_cfg is not None and m_cfg is not None:
                attempt(lambda: load_agent_weights(Path(model_dir), c_cfg["env"]))
    return list(dict.fromkeys(problems))
