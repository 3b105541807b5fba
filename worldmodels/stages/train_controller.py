"""Stage 5: train C with CMA-ES in the real environment, V and M in the loop (numpy, in workers),
then score the best controller on held-out tracks.

Writes controller/: es_state.pkl (every generation; rerunning resumes), best.npz, config.json,
generations.csv, tensorboard/, cmaes.png, eval.json.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from worldmodels import controller as ctrl
from worldmodels.artifacts import Paths, StageError, arrays_digest, atomic_path, fix_hint, read_json, write_json
from worldmodels.cli import RunArgs
from worldmodels.config import ControllerConfig
from worldmodels.envs.registry import get_spec
from worldmodels.evolution import run_cmaes
from worldmodels.parallel import TaskPool
from worldmodels.rollout import evaluate_task, init_worker
from worldmodels.seeding import eval_seeds, train_seed
from worldmodels.stages.train_vae import load_vision
from worldmodels.training import write_metrics_csv

log = logging.getLogger(__name__)

PAPER_SCORES = {"carracing": 906.0}
VALIDATION_OFFSET = 10**6
"""Validation tracks (for choosing the controller) start at this offset among the held-out seeds;
the final score uses offsets 0..N-1, so choosing and scoring never share a track."""


def load_memory(args: RunArgs, vision_cfg: dict) -> dict:
    """memory/config.json, checked against V (same fingerprint and z size)."""
    paths = Paths(args.data_dir)
    mem = read_json(paths.memory / "config.json", "memory", args)
    if mem["inputs"]["vision"] != vision_cfg["fingerprint"]:
        raise StageError(
            f"{paths.memory} was trained on a series from another vision model; rerun "
            f"`{fix_hint('series', args)}` then `{fix_hint('memory', args)}`"
        )
    if mem["z_size"] != vision_cfg["z_size"]:
        raise StageError(
            f"{paths.memory} has z size {mem['z_size']} but V has {vision_cfg['z_size']}; "
            f"rerun `{fix_hint('memory', args)}`"
        )
    if not (paths.memory / "rnn.npz").exists() or not (paths.vision / "encoder.npz").exists():
        raise StageError(f"weights missing in {paths.vision} or {paths.memory}; rerun stages 2 and 4")
    return mem


def evaluate_params(pool: TaskPool, params: np.ndarray, seeds: list[int], max_steps: int, desc: str) -> np.ndarray:
    """Total rewards float64 [len(seeds)] of one controller on the given env seeds."""
    results = pool.map(evaluate_task, [(params, s, max_steps, 0) for s in seeds], desc=desc)
    return np.array([r for r, _ in results], np.float64)


def train_controller(args: RunArgs, cfg: ControllerConfig) -> Path:
    """Run CMA-ES (resuming if a state exists), then score the best controller; returns controller/."""
    paths = Paths(args.data_dir)
    out = paths.controller
    vision_cfg, _ = load_vision(args)
    mem = load_memory(args, vision_cfg)
    spec = get_spec(args.env)
    n_in = ctrl.input_size(vision_cfg["z_size"], mem["rnn_size"], cfg.inputs)
    n_params = n_in * spec.controller_outputs + spec.controller_outputs
    settings = {
        "env": args.env,
        "seed": args.seed,
        "vision": vision_cfg["fingerprint"],
        "memory": mem["fingerprint"],
        "n_params": n_params,
        **{k: v for k, v in asdict(cfg).items() if k not in ("generations", "eval_episodes")},
    }
    out.mkdir(parents=True, exist_ok=True)
    log.info(
        "controller: %d inputs (%s) -> %d outputs, %d parameters", n_in, cfg.inputs, spec.controller_outputs, n_params
    )

    from worldmodels.training import TensorBoard

    tb = TensorBoard(out / "tensorboard")
    config = {
        "kind": "linear",
        "env": args.env,
        "preset": args.preset,
        "seed": args.seed,
        "inputs": cfg.inputs,
        "z_size": vision_cfg["z_size"],
        "rnn_size": mem["rnn_size"],
        "outputs": spec.controller_outputs,
        "n_params": n_params,
        "config": asdict(cfg),
        "inputs_fingerprints": {"vision": vision_cfg["fingerprint"], "memory": mem["fingerprint"]},
    }

    init_args = (args.env, str(paths.vision), str(paths.memory), cfg.inputs, cfg.fast_env)
    with TaskPool(args.workers, init_worker, init_args) as pool:

        def evaluate(solutions, gen):
            # Every candidate of a generation meets the same tracks (common random numbers).
            seeds = [train_seed(args.seed, 5, gen, t) for t in range(cfg.trials)]
            tasks = [(np.asarray(s, np.float32), sd, cfg.max_steps, cfg.patience) for s in solutions for sd in seeds]
            results = pool.map(evaluate_task, tasks, desc=f"gen {gen + 1} episodes")
            rewards = np.array([r for r, _ in results]).reshape(len(solutions), cfg.trials)
            return rewards.mean(axis=1)

        def validate(state):
            """Score this generation's best and the CMA-ES mean on validation tracks; keep the better."""
            row = state["history"][-1]
            seeds = eval_seeds(cfg.val_episodes, offset=VALIDATION_OFFSET)
            for name, params in (("best", state["gen_best_params"]), ("mean", state["mean_params"])):
                scores = evaluate_params(pool, np.asarray(params, np.float32), seeds, cfg.eval_max_steps, None)
                row[f"val_{name}"] = float(scores.mean())
                if scores.mean() > state.get("val_score", -np.inf):
                    state["val_score"], state["val_params"] = float(scores.mean()), np.asarray(params)
            row["val_selected"] = state["val_score"]

        def on_generation(state):
            if cfg.eval_every and state["generation"] % cfg.eval_every == 0:
                validate(state)
            chosen = np.asarray(state.get("val_params", state["best_params"]), np.float32)
            with atomic_path(out / "best.npz") as tmp:
                np.savez(tmp, params=chosen, mean=np.asarray(state["mean_params"], np.float32))
            write_metrics_csv(out / "generations.csv", state["history"])
            row = state["history"][-1]
            tb.scalars("es", {k: v for k, v in row.items() if k != "generation"}, row["generation"])
            write_json(
                out / "config.json",
                {
                    **config,
                    "generation": state["generation"],
                    "selected_by": "validation" if "val_params" in state else "training fitness",
                    "fingerprint": arrays_digest({"params": chosen}),
                    "wall_s": state["wall_s"],
                },
            )

        state = run_cmaes(
            n_params,
            cfg.generations,
            cfg.population,
            cfg.sigma0,
            args.seed,
            out / "es_state.pkl",
            settings,
            evaluate,
            on_generation,
        )
        if state["generation"] == 0:
            raise StageError("no generation ran; --generations must be positive")
        eval_path = out / "eval.json"
        best = np.asarray(state.get("val_params", state["best_params"]), np.float32)
        fp = arrays_digest({"params": best})
        previous = read_json(eval_path, "controller") if eval_path.exists() else {}
        if previous.get("fingerprint") != fp or previous.get("episodes") != cfg.eval_episodes:
            seeds = eval_seeds(cfg.eval_episodes)
            scores = evaluate_params(pool, best, seeds, cfg.eval_max_steps, "held-out episodes")
            result = {
                "real": {"mean": float(scores.mean()), "std": float(scores.std()), "scores": scores.tolist()},
                "episodes": cfg.eval_episodes,
                "max_steps": cfg.eval_max_steps,
                "seeds": [seeds[0], seeds[-1]],
                "fingerprint": fp,
                "generation": state["generation"],
            }
            write_json(eval_path, result)
            log.info("held-out score over %d episodes: %.1f +- %.1f", len(scores), scores.mean(), scores.std())
    _plot(out, state["history"], args.env)
    return out


def _plot(out: Path, history: list[dict], env: str) -> None:
    from worldmodels.plots import plot_curves

    gens = [r["generation"] for r in history]
    refs = {f"paper {PAPER_SCORES[env]:.0f}": PAPER_SCORES[env]} if env in PAPER_SCORES else {}
    plot_curves(
        out / "cmaes.png",
        gens,
        {
            "mean": [r["reward_mean"] for r in history],
            "max": [r["reward_max"] for r in history],
            "best so far": [r["reward_best"] for r in history],
            "validation (selected)": [r.get("val_selected", float("nan")) for r in history],
        },
        "generation",
        "episode reward",
        refs,
        title=f"CMA-ES on {env}",
    )
