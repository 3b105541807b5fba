"""Score a saved agent (or the random policy) on held-out episodes of the real environment.

Example:  python -m worldmodels.evaluate --env carracing --episodes 100
          python -m worldmodels.evaluate --env carracing --episodes 100 --policy random
          python -m worldmodels.evaluate --env carracing --episodes 200 --seed-range final  (once, to ship)
          python -m worldmodels.evaluate --env doom --in dream --temperature 1.15  (inside M's dream)
Reads:    <data-dir>/vision, memory, controller (default data/<env>; a shipped bundle works too)
Writes:   <data-dir>/evaluate_<policy>.json (or --out), and prints mean +- std

Episodes use env seeds S .. S+N-1 with --seed-offset S; by default the development range from
2x10^9, where every choice is judged (training seeds are below 10^9; stage 5 validates on 2x10^9 +
10^6 on). --seed-range final starts at 4x10^9: the range kept for scoring an agent about to ship,
once. The result records its seed range, mean, std and standard error.
The stock gymnasium env is the default; --fast-env uses the pixel-identical fast renderer. The
result records which renderer scored it. `--in dream` scores the agent inside its own M instead
(the dream stage 5 trains in, at --temperature, default the controller's; a seed picks the episode's
first frame and its noise), as stage 5's eval.json does on the same seeds. `--name` picks another
controller directory (a temperature sweep's controller_tau<T>).
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from worldmodels.cli import SCORING_FLAGS, parse_tool, report_errors
from worldmodels.cli import build_parser as build_cli_parser
from worldmodels.config import ENVS_PER_WORKER
from worldmodels.envs.registry import get_spec
from worldmodels.io.artifacts import ensure_writable, write_json
from worldmodels.io.provenance import provenance
from worldmodels.io.seeding import seed_range
from worldmodels.models.loading import agent_fingerprints, load_agent_weights
from worldmodels.runtime.pool import TaskPool
from worldmodels.runtime.rollout import agent_pool, close_worker, init_random_worker, map_episodes, random_policy_task
from worldmodels.tools.results import score_decimals

log = logging.getLogger(__name__)


def evaluate(
    env: str,
    model_dir: Path,
    episodes: int,
    first_seed: int,
    workers: int,
    policy: str,
    fast: bool,
    max_steps: int,
    ray_address: str | None = None,
    envs_per_worker: int = ENVS_PER_WORKER,
    name: str = "controller",
    where: str = "real",
    temperature: float | None = None,
) -> dict:
    """Score `policy` ('agent' or 'random') on env seeds first_seed .. first_seed+episodes-1, the
    agent's episodes `envs_per_worker` at a time in each worker (or, where="dream", all at once in
    its M's dream at `temperature`); returns {"mean", "std", "scores", "renderer", ...}."""
    seeds = list(range(first_seed, first_seed + episodes))
    t0 = time.time()
    model, dream = None, {}
    if where == "dream":
        weights = load_agent_weights(model_dir, env, name)
        model = {"dir": str(model_dir), **agent_fingerprints(weights)}
        c_cfg = weights["controller"]
        tau = c_cfg.get("temperature", c_cfg.get("config", {}).get("temperature", 1.0))
        dream = {"temperature": float(tau if temperature is None else temperature)}
        scores = dream_scores(model_dir, env, weights, seeds, dream["temperature"], max_steps)
        results = [(s, None) for s in scores]
    elif policy == "random":
        with TaskPool(workers, init_random_worker, (env, fast), ray_address, finalizer=close_worker) as pool:
            results = pool.map(random_policy_task, [(s, max_steps) for s in seeds], desc="episodes")
    else:
        weights = load_agent_weights(model_dir, env, name)  # validated here: the workers load the files as they are
        cfg, params = weights["controller"], weights["params"]
        model = {"dir": str(model_dir), **agent_fingerprints(weights)}
        with agent_pool(env, model_dir, cfg["inputs"], fast, workers, ray_address) as pool:
            tasks = [(params, s, max_steps, 0) for s in seeds]
            results = map_episodes(pool, tasks, envs_per_worker, desc="episodes")
    scores = np.array([r for r, _ in results])
    std = float(scores.std())
    good = get_spec(env).good_score
    return {
        "policy": policy,
        "env": env,
        "model": model,
        "episodes": episodes,
        "seeds": [seeds[0], seeds[-1]],
        "seed_range": seed_range(seeds[0], len(seeds)),
        "where": where,
        **dream,
        "renderer": "dream" if where == "dream" else get_spec(env).renderer(fast),
        "stock_env": where == "real" and get_spec(env).renderer(fast) == "stock",
        "max_steps": max_steps,
        "mean": float(scores.mean()),
        "std": std,
        "standard_error": std / float(np.sqrt(len(scores))),
        "good_score": good,
        "share_good": None if good is None else float(np.mean(scores >= good)),
        "scores": scores.tolist(),
        # Steps per episode in the real env (a CarRacing lap finished within max_steps ends early);
        # the dream's scores are its steps already.
        "steps": None if where == "dream" else [int(n) for _, n in results],
        "wall_s": time.time() - t0,
    }


def dream_scores(model_dir: Path, env: str, weights: dict, seeds: list[int], temperature: float, max_steps: int):
    """The saved agent's rewards [len(seeds)] in its M's dream, one batch (as stage 5 scores it)."""
    from worldmodels.models.dream import Dream

    c_cfg = weights["controller"]
    trained = c_cfg.get("config", {})  # the dream the controller trained in: its dropout and done shift
    dropout, shift = float(trained.get("dream_dropout", 0.0)), float(trained.get("dream_done_shift", 0.0))
    run = SimpleNamespace(data_dir=Path(model_dir), env=env)
    dream = Dream(run, weights["memory"], weights["rnn"], c_cfg["inputs"], temperature, get_spec(env), dropout, shift)
    return dream.scores(np.stack([weights["params"]] * len(seeds)), seeds, max_steps)


def build_parser():
    def extra(p):
        p.add_argument(
            "--policy", choices=("agent", "random"), default="agent", help="the saved agent, or uniform random"
        )
        p.add_argument(
            "--in",
            dest="where",
            choices=("real", "dream"),
            default="real",
            help="score in the real env, or inside the agent's own M (the dream; --policy agent only)",
        )
        p.add_argument(
            "--temperature",
            type=float,
            help="dream temperature tau for --in dream (default: the one the controller was trained at)",
        )
        p.add_argument("--name", default="controller", help="the controller directory under the data dir")
        p.add_argument("--label", help="what was scored, in words, for docs/results.md (python -m worldmodels.results)")

    return build_cli_parser(
        __doc__,
        run_flags=("env", "preset", "data_dir", "workers", "ray_address"),
        scoring_flags=SCORING_FLAGS,
        episodes=100,
        fast_env=False,
        extra=extra,
        prog="worldmodels evaluate",
    )


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    run, a = parse_tool(p, argv)
    if a.where == "dream" and a.policy == "random":
        p.error("--in dream scores the saved agent; the random policy has no dream (drop --policy random)")
    if a.temperature is not None and (a.where != "dream" or a.temperature < 0):
        p.error("--temperature applies to --in dream and must be >= 0")
    out = a.out or run.data_dir / f"evaluate_{a.policy}{'_dream' if a.where == 'dream' else ''}.json"

    def body():
        ensure_writable(out.parent)  # before any episode is played
        result = evaluate(
            run.env,
            run.data_dir,
            a.episodes,
            a.seed_offset,
            run.workers,
            a.policy,
            a.fast_env,
            a.max_steps,
            run.ray_address,
            run.envs_per_worker,
            a.name,
            a.where,
            a.temperature,
        )
        command = shlex.join(["python", "-m", "worldmodels.evaluate", *(run.argv or [])])
        write_json(out, {**({"label": a.label} if a.label else {}), **result, **provenance(command)})
        where = f"dream at tau {result['temperature']:g}" if a.where == "dream" else f"{result['renderer']} renderer"
        d = score_decimals(result["mean"], result["std"])
        print(
            f"{a.policy} on {run.env} ({where}): {result['mean']:.{d}f} +- {result['std']:.{d}f} "
            f"(standard error {result['standard_error']:.{d}f}) over {a.episodes} episodes of the "
            f"{result['seed_range']} range, seeds {result['seeds'][0]}..{result['seeds'][1]}"
            + (
                ""
                if result["good_score"] is None
                else f"; {result['share_good']:.0%} at {result['good_score']:.0f} or more"
            )
            + f" (wrote {out})"
        )

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
