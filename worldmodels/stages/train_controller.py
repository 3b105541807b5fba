"""Stage 5: train C with CMA-ES in the real environment (V and M in the loop, numpy, in workers) or
entirely inside the dream M generates (`--in dream`, the whole population as one batch through M),
then score the chosen controller on held-out episodes of the real environment.

Writes controller/ (or --name): es_state.pkl (every generation; rerunning resumes), best.npz, config.json,
generations.csv, tensorboard/, cmaes.png, eval.json.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from worldmodels.config import ControllerConfig, Run
from worldmodels.envs.registry import get_spec
from worldmodels.io.artifacts import (
    SCRIPTS,
    StageError,
    atomic_path,
    clean_temporaries,
    command_line,
    controller_fingerprint,
    one_writer,
    read_json,
    write_json,
)
from worldmodels.io.checkpoints import write_metrics_csv
from worldmodels.io.seeding import eval_seeds, train_seed
from worldmodels.models import controller as ctrl
from worldmodels.models.dream import Dream
from worldmodels.models.loading import load_encoder, load_memory, load_rnn, load_vision
from worldmodels.runtime.evolution import load_state, run_cmaes
from worldmodels.runtime.pool import TaskPool
from worldmodels.runtime.rollout import agent_pool, map_episodes

log = logging.getLogger(__name__)

VALIDATION_OFFSET = 10**6
"""Validation tracks (for choosing the controller) start at this offset among the held-out seeds;
the final score uses offsets 0..N-1, so choosing and scoring never share a track."""
SELECTION_OFFSET = 2 * 10**6
"""Episodes that choose among several searches (--searches) start here: neither validation's nor the
final score's."""


def _settings(run: Run, cfg: ControllerConfig, vision_cfg: dict, mem: dict, n_params: int, dream=None) -> dict:
    """What a CMA-ES state must have been made with to be resumed."""
    done_bias = {} if dream is None else {"done_bias": dream.done_bias}  # the dream's termination depends on it
    return {
        "env": run.env,
        "seed": run.seed,
        "vision": vision_cfg["fingerprint"],
        "memory": mem["fingerprint"],
        "n_params": n_params,
        # curiosity, dream dropout and the done shift enter the settings only when used, so older runs resume.
        **{
            k: v
            for k, v in asdict(cfg).items()
            if k not in ("generations", "eval_episodes", "searches", "select_episodes", "combine")
            and (cfg.curiosity or k != "curiosity")
            and (cfg.dream_dropout or k != "dream_dropout")
            and (cfg.dream_done_shift or k != "dream_done_shift")
        },
        **done_bias,
    }


class _Search:
    """Stage 5's scoring: candidates on training episodes (real env in the pool's workers, or the
    dream), the generation's best on validation episodes, the chosen controller on held-out ones."""

    def __init__(self, run: Run, cfg: ControllerConfig, pool: TaskPool, dream: Dream | None, out: Path, config: dict):
        self.run, self.cfg, self.pool, self.dream, self.out, self.config = run, cfg, pool, dream, out, config
        from worldmodels.io.checkpoints import TensorBoard

        self.tb = TensorBoard(out / "tensorboard")

    def real_scores(self, params_list, seeds, max_steps, patience, desc, curiosity=0.0) -> np.ndarray:
        tasks = [(np.asarray(p, np.float32), s, max_steps, patience, curiosity) for p, s in zip(params_list, seeds)]
        results = map_episodes(self.pool, tasks, self.run.envs_per_worker, desc=desc)
        return np.array([r for r, _ in results], np.float64)

    def fitness(self, solutions, gen: int) -> np.ndarray:
        """Mean reward [population] over cfg.trials episodes; every candidate of a generation meets the
        same episodes (common random numbers)."""
        cfg = self.cfg
        seeds = [train_seed(self.run.seed, 5, gen, t) for t in range(cfg.trials)]
        params = [s for s in solutions for _ in seeds]
        all_seeds = seeds * len(solutions)
        if self.dream is not None:
            rewards = self.dream.scores(np.stack(params), all_seeds, cfg.max_steps, cfg.curiosity)
        else:
            desc = f"gen {gen + 1} episodes"
            rewards = self.real_scores(params, all_seeds, cfg.max_steps, cfg.patience, desc, cfg.curiosity)
        return rewards.reshape(len(solutions), cfg.trials).mean(axis=1)

    def held_out(self, params, n: int, offset: int, desc: str | None) -> np.ndarray:
        """Scores on held-out episodes, where the controller trains (dream or real)."""
        seeds = eval_seeds(n, offset)
        if self.dream is not None:
            return self.dream.scores(np.stack([params] * n), seeds, self.cfg.eval_max_steps)
        return self.real_scores([params] * n, seeds, self.cfg.eval_max_steps, 0, desc)

    def validate(self, state: dict) -> None:
        """Score this generation's best and the CMA-ES mean on validation episodes; keep the better.
        Every checked candidate stays in the state with its per-track scores (state["checks"]), so
        `python -m worldmodels.experiments.revalidate` can tell what fewer tracks would have chosen."""
        row = state["history"][-1]
        for name, params in (("best", state["gen_best_params"]), ("mean", state["mean_params"])):
            scores = self.held_out(np.asarray(params, np.float32), self.cfg.val_episodes, VALIDATION_OFFSET, None)
            check = {"generation": state["generation"], "name": name, "params": np.asarray(params)}
            state.setdefault("checks", []).append({**check, "scores": scores.tolist()})
            row[f"val_{name}"] = float(scores.mean())
            if scores.mean() > state.get("val_score", -np.inf):
                state["val_score"], state["val_params"] = float(scores.mean()), np.asarray(params)
        row["val_selected"] = state["val_score"]

    def on_generation(self, state: dict) -> None:
        """After each generation: validate (every cfg.eval_every), then best.npz, the log and config.json."""
        if self.cfg.eval_every and state["generation"] % self.cfg.eval_every == 0:
            self.validate(state)
        self.write_chosen(state)
        row = state["history"][-1]
        self.tb.scalars("es", {k: v for k, v in row.items() if k != "generation"}, row["generation"])

    def write_chosen(self, state: dict) -> None:
        """best.npz (the chosen controller), generations.csv and config.json from the CMA-ES state; also
        run when a finished search is rerun, so a damaged best.npz is rewritten, never reported as written."""
        chosen = _chosen(state)
        with atomic_path(self.out / "best.npz") as tmp:
            np.savez(tmp, params=chosen, mean=np.asarray(state["mean_params"], np.float32))
        write_metrics_csv(self.out / "generations.csv", state["history"])
        write_json(
            self.out / "config.json",
            {
                **self.config,
                "generation": state["generation"],
                "selected_by": state.get("selected_by")
                or ("validation" if "val_params" in state else "training fitness"),
                "fingerprint": controller_fingerprint(chosen),
                "wall_s": state["wall_s"],
            },
        )

    def final_score(self, state: dict) -> None:
        """eval.json: the chosen controller on held-out episodes of the real env (and of the dream when
        trained there); kept as it is when it already scores these parameters on as many episodes."""
        cfg, eval_path = self.cfg, self.out / "eval.json"
        best = _chosen(state)
        fp = controller_fingerprint(best)
        previous = read_json(eval_path, "controller") if eval_path.exists() else {}
        if previous.get("fingerprint") == fp and previous.get("episodes") == cfg.eval_episodes:
            if "renderer" not in previous:  # made before eval records named it: these settings scored it
                write_json(eval_path, {**previous, "renderer": get_spec(self.run.env).renderer(cfg.fast_env)})
            return
        seeds = eval_seeds(cfg.eval_episodes)
        scores = self.real_scores([best] * len(seeds), seeds, cfg.eval_max_steps, 0, "held-out episodes")
        result = {
            "real": _summary(scores),
            "trained_in": cfg.train_in,
            "renderer": get_spec(self.run.env).renderer(cfg.fast_env),
            "episodes": cfg.eval_episodes,
            "max_steps": cfg.eval_max_steps,
            "seeds": [seeds[0], seeds[-1]],
            "fingerprint": fp,
            "generation": state["generation"],
        }
        if self.dream is not None:
            result["dream"] = _summary(self.held_out(best, cfg.eval_episodes, 0, None))
            result["temperature"] = cfg.temperature
        write_json(eval_path, result)
        log.info("held-out real score over %d episodes: %.1f +- %.1f", len(scores), scores.mean(), scores.std())


@one_writer(lambda cfg: cfg.name, "controller")
def train_controller(run: Run, cfg: ControllerConfig) -> Path:
    """Run CMA-ES in the real env or the dream (resuming if a state exists), --searches times with their
    own seeds when asked (keeping the one that scores best on selection episodes, or the mean of their
    controllers with --combine mean), then score the kept controller on held-out episodes (of the real
    env, and of the dream when trained there)."""
    out = run.data_dir / cfg.name
    vision_cfg, _ = load_vision(run)
    mem = load_memory(run, vision_cfg)
    load_encoder(run, vision_cfg)  # validated here: the workers load it as it is
    rnn_weights = load_rnn(run, mem)
    outs = [out] if cfg.searches == 1 else [out / f"search-{i}" for i in range(cfg.searches)]
    for o in outs:
        load_state(o / "es_state.pkl")  # a damaged search state fails now, before anything is written
    spec = get_spec(run.env)
    n_in = ctrl.input_size(vision_cfg["z_size"], mem["rnn_size"], cfg.inputs)
    n_params = n_in * spec.controller_outputs + spec.controller_outputs
    dream = None
    if cfg.train_in == "dream":
        dream = Dream(run, mem, rnn_weights, cfg.inputs, cfg.temperature, spec, cfg.dream_dropout, cfg.dream_done_shift)
    for o in outs:
        o.mkdir(parents=True, exist_ok=True)
        clean_temporaries(o)
    log.info(
        "controller: %d inputs (%s) -> %d outputs, %d parameters, trained in the %s",
        *(n_in, cfg.inputs, spec.controller_outputs, n_params, cfg.train_in),
    )
    config = {
        "kind": "linear",
        **{"env": run.env, "preset": run.preset, "seed": run.seed, "inputs": cfg.inputs},
        **{"trained_in": cfg.train_in, "temperature": cfg.temperature, "renderer": spec.renderer(cfg.fast_env)},
        **{"z_size": vision_cfg["z_size"], "rnn_size": mem["rnn_size"], "outputs": spec.controller_outputs},
        "n_params": n_params,
        "command": command_line(SCRIPTS["controller"], run),
        "config": asdict(cfg),
        "inputs_fingerprints": {"vision": vision_cfg["fingerprint"], "memory": mem["fingerprint"]},
    }
    with agent_pool(run.env, run.data_dir, cfg.inputs, cfg.fast_env, run.workers, run.ray_address) as pool:
        states = []
        for i, o in enumerate(outs):
            run_i = replace(run, seed=_search_seed(run, cfg, i))
            if len(outs) > 1:
                log.info("search %d of %d (seed %d) in %s", i + 1, len(outs), run_i.seed, o)
            search = _Search(run_i, cfg, pool, dream, o, {**config, "search_seed": run_i.seed})
            states.append(_run_search(search, n_params, _settings(run_i, cfg, vision_cfg, mem, n_params, dream)))
        if len(outs) > 1 and cfg.combine == "mean":
            state, kept = _mean_of(states), {"search_seeds": [_search_seed(run, cfg, i) for i in range(len(outs))]}
        else:
            chosen = 0 if len(outs) == 1 else _select(_Search(run, cfg, pool, dream, out, config), states, outs)
            state, kept = states[chosen], {"search_seed": _search_seed(run, cfg, chosen)}
        search = _Search(run, cfg, pool, dream, out, {**config, **kept})
        search.write_chosen(state)
        search.final_score(state)
    random_path = run.data_dir / "evaluate_random.json"
    random = read_json(random_path, "controller") if random_path.exists() else {}
    _plot(out, state["history"], run.env, spec.paper_score, random.get("mean", spec.random_score))
    return out


def _search_seed(run: Run, cfg: ControllerConfig, i: int) -> int:
    """Search i of seed S uses seed S*N+i: one search is seed S itself, and seeds never share a search."""
    return run.seed * cfg.searches + i


def _chosen(state: dict) -> np.ndarray:
    """The controller a search keeps: validation's choice, else the best on training fitness."""
    return np.asarray(state["val_params"] if "val_params" in state else state["best_params"], np.float32)


def _mean_of(states: list[dict]) -> dict:
    """A state standing for the mean of several searches (--combine mean): its chosen controller is the
    mean of theirs (a linear controller's output is linear in its parameters, so the mean controller's
    output is the mean of the searches' outputs: a committee that steers by their average), its history
    the searches' mean per generation, its wall time their sum."""
    return {
        "best_params": ctrl.committee([_chosen(s) for s in states]),
        "mean_params": np.mean([np.asarray(s["mean_params"], np.float32) for s in states], axis=0),
        "history": _mean_history([s["history"] for s in states]),
        "generation": min(s["generation"] for s in states),
        "wall_s": float(sum(s["wall_s"] for s in states)),
        "selected_by": f"the mean of {len(states)} searches' chosen controllers",
    }


def _mean_history(histories: list[list[dict]]) -> list[dict]:
    """Per generation, the mean over the searches of each figure every one of them recorded."""
    rows = []
    for gen_rows in zip(*histories):
        keys = [k for k in gen_rows[0] if all(k in r for r in gen_rows)]
        rows.append(
            {k: gen_rows[0][k] if k == "generation" else float(np.mean([r[k] for r in gen_rows])) for k in keys}
        )
    return rows


def _run_search(search: _Search, n_params: int, settings: dict) -> dict:
    """One CMA-ES search (resumed from its es_state.pkl when there is one), its best.npz written."""
    cfg, run = search.cfg, search.run
    state = run_cmaes(
        *(n_params, cfg.generations, cfg.population, cfg.sigma0, run.seed, search.out / "es_state.pkl", settings),
        search.fitness,
        search.on_generation,
    )
    if state["generation"] == 0:
        raise StageError("no generation ran; --generations must be positive")
    search.write_chosen(state)
    return state


def _select(search: _Search, states: list[dict], outs: list[Path]) -> int:
    """The index of the search whose chosen controller scores best on cfg.select_episodes held-out
    episodes (where C trains), each on the same episodes; selection.json records every score, and is
    reused when it already scored these controllers on as many episodes."""
    cfg, path = search.cfg, search.out / "selection.json"
    chosen = [_chosen(st) for st in states]
    fps = [controller_fingerprint(p) for p in chosen]
    previous = read_json(path, "controller") if path.exists() else {}
    if [r.get("fingerprint") for r in previous.get("searches", [])] == fps and previous.get(
        "episodes"
    ) == cfg.select_episodes:
        return int(previous["selected"])
    seeds = eval_seeds(cfg.select_episodes, SELECTION_OFFSET)
    rows = []
    for i, (params, o) in enumerate(zip(chosen, outs)):
        scores = search.held_out(params, cfg.select_episodes, SELECTION_OFFSET, f"selection, search {i + 1}")
        rows.append(
            {"dir": o.name, "seed": _search_seed(search.run, cfg, i), "fingerprint": fps[i], **_summary(scores)}
        )
        log.info("search %d: %.1f +- %.1f on %d selection episodes", i + 1, scores.mean(), scores.std(), len(scores))
    selected = int(np.argmax([r["mean"] for r in rows]))
    write_json(
        path,
        {
            "selected": selected,
            "in": cfg.train_in,
            "episodes": cfg.select_episodes,
            "seeds": [seeds[0], seeds[-1]],
            "searches": rows,
        },
    )
    log.info("kept search %d (%s)", selected + 1, outs[selected])
    return selected


def _summary(scores: np.ndarray) -> dict:
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "scores": np.asarray(scores).tolist()}


def _plot(out: Path, history: list[dict], env: str, paper_score: float | None, random_score: float | None) -> None:
    from worldmodels.io.plots import plot_curves

    gens = [r["generation"] for r in history]
    refs = {f"paper {paper_score:.0f}": paper_score} if paper_score is not None else {}
    if random_score is not None:
        refs[f"random policy {random_score:.0f}"] = random_score
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
