"""CMA-ES on the `cma` package, with a checkpoint every generation and exact resume.

The checkpoint is a pickle of the CMAEvolutionStrategy together with numpy's global random state
(cma samples from numpy.random), the best solution so far and the per-generation log.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from worldmodels.io.artifacts import StageError, atomic_path, fault_point

log = logging.getLogger(__name__)


def load_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh:
            state = pickle.load(fh)
    except Exception as e:  # noqa: BLE001 - any unreadable state gets the same advice
        raise StageError(f"CMA-ES state {path} is unreadable ({e}); delete it to start stage 5 over") from e
    keys = ("es", "generation", "best_params", "best_reward", "history", "settings", "wall_s")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise StageError(f"CMA-ES state {path} lacks parts of the state; delete it to start stage 5 over")
    if state["generation"] > 0 and not np.isfinite(np.asarray(state["best_params"], np.float64)).all():
        raise StageError(f"CMA-ES state {path} holds NaN or inf parameters; delete it to start stage 5 over")
    return state


def save_state(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(state, fh)


def _draw_from_global_rng(es) -> None:
    """Point an unpickled search's sampler back at numpy's global RNG.

    cma samples through the bound method `np.random.randn` it keeps in `es.opts["randn"]` and its
    sampler, and draws some numbers from `np.random` directly. Pickling that bound method copies the
    global RandomState, so an unpickled search sampled from a private copy while its other draws came
    from the global RNG: with 867 parameters a resumed search left the uninterrupted one two
    generations after the resume. The checkpoint restores the global RNG; the sampler must use it."""
    holders = [es.opts] + ([vars(es.sm)] if hasattr(es, "sm") else [])
    for holder in holders:
        randn = holder.get("randn")
        owner = getattr(randn, "__self__", None)
        if getattr(randn, "__name__", "") == "randn" and isinstance(owner, np.random.RandomState):
            holder["randn"] = np.random.randn


def initial_state(
    n_params: int, population: int, sigma0: float, seed: int, state_path: Path, settings: dict[str, Any]
) -> dict[str, Any]:
    """The saved CMA-ES state (numpy's global RNG restored with it), or a fresh one."""
    import cma

    state = load_state(state_path)
    if state is not None:
        if state["settings"] != settings:
            raise StageError(
                f"CMA-ES state {state_path} was made with other settings; rerun with its flags, "
                f"or delete {state_path.parent} to start over"
            )
        np.random.set_state(state["np_random_state"])
        _draw_from_global_rng(state["es"])
        log.info("resuming CMA-ES at generation %d", state["generation"])
        return state
    # cma treats seed 0 as "use the time": shift to keep every seed deterministic.
    es = cma.CMAEvolutionStrategy(np.zeros(n_params), sigma0, {"popsize": population, "seed": seed + 1, "verbose": -9})
    return {
        "es": es,
        "generation": 0,
        "best_params": np.zeros(n_params),
        "best_reward": -np.inf,
        "history": [],
        "settings": settings,
        "wall_s": 0.0,
    }


def step_generation(state: dict[str, Any], evaluate: Callable[[list[np.ndarray], int], np.ndarray]) -> dict:
    """Ask, evaluate, tell: one generation; updates `state` and returns its log row."""
    t0 = time.time()
    es, gen = state["es"], state["generation"]
    solutions = es.ask()
    rewards = np.asarray(evaluate(solutions, gen), np.float64)
    fault_point("generation")  # evaluated, not yet told: a kill here loses the whole generation
    es.tell(solutions, (-rewards).tolist())
    i = int(np.argmax(rewards))
    state["gen_best_params"] = np.asarray(solutions[i])
    if rewards[i] > state["best_reward"]:
        state["best_reward"], state["best_params"] = float(rewards[i]), np.asarray(solutions[i])
    row = {
        "generation": gen + 1,
        "reward_min": float(rewards.min()),
        "reward_mean": float(rewards.mean()),
        "reward_max": float(rewards.max()),
        "reward_best": state["best_reward"],
        "sigma": float(es.sigma),
        "seconds": time.time() - t0,
    }
    state["history"].append(row)
    state["generation"] = gen + 1
    state["wall_s"] += row["seconds"]
    state["mean_params"] = np.asarray(es.mean)
    return row


def run_cmaes(
    n_params: int,
    generations: int,
    population: int,
    sigma0: float,
    seed: int,
    state_path: Path,
    settings: dict[str, Any],
    evaluate: Callable[[list[np.ndarray], int], np.ndarray],
    on_generation: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Maximise evaluate(solutions, generation) -> mean rewards [population] for `generations` generations,
    saving the state after every one (a rerun resumes there).

    Returns the state: {"es", "generation", "best_params", "best_reward", "history", ...}.
    """
    state = initial_state(n_params, population, sigma0, seed, state_path, settings)
    bar = tqdm(total=generations, initial=state["generation"], desc="generations", unit="gen", leave=False)
    while state["generation"] < generations:
        row = step_generation(state, evaluate)
        if on_generation is not None:
            on_generation(state)
        state["np_random_state"] = np.random.get_state()  # after every draw of this generation
        save_state(state_path, state)
        bar.update()
        bar.set_postfix(mean=f"{row['reward_mean']:.1f}", best=f"{state['best_reward']:.1f}")
        log.info(
            "generation %d: reward mean %.1f max %.1f best %.1f sigma %.3f",
            *(row["generation"], row["reward_mean"], row["reward_max"], state["best_reward"], row["sigma"]),
        )
    bar.close()
    return state
