"""What would stage 5 have kept with fewer validation tracks? Re-choose from the same search.

Example:  python -m worldmodels.experiments.revalidate --data-dir data/carracing-t4v24 --tracks 8 --write val8
          python -m worldmodels.experiments.revalidate --data-dir data/carracing-pre --extend 40 \
              --from-generation 80 --tracks 48 --write val48   (more validation tracks, after the run)
Reads:    <data-dir>/controller/es_state.pkl (every checked candidate and its per-track validation scores)
Writes:   with --write NAME, <data-dir>/NAME/best.npz and config.json: the controller the first --tracks
          validation tracks choose, for `python -m worldmodels.evaluate --name NAME`; with --extend N,
          <data-dir>/controller/revalidate.json: each candidate's scores on the N further tracks

Stage 5 scores each check's generation-best and CMA-ES mean on --val-episodes validation tracks and
keeps the best. The validation seeds are the same first tracks whatever their number, so the choice
that a run with fewer tracks would have made is the candidate with the best mean over the first
--tracks of them: one search measures the validation lever, without the noise of a second search.

--extend N scores every checked candidate (from --from-generation on) on the next N validation tracks
of the real env (the seeds right after those stage 5 scored, with its renderer and episode cap), so
more tracks can re-choose after the run. Each candidate's scores are saved as soon as they are
played: a stopped run resumes where it was by rerunning the same command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from worldmodels.io.artifacts import StageError


def load_checks(state_path: Path) -> list[dict]:
    """The checked candidates of a search: [{"generation", "name", "params", "scores"}]."""
    from worldmodels.runtime.evolution import load_state

    state = load_state(state_path)
    if state is None:
        raise StageError(f"{state_path} does not exist; run stage 5 (05_train_controller.py) first")
    if not state.get("checks"):
        raise StageError(
            f"{state_path} holds no validation checks with per-track scores (made before they were "
            "recorded, or with --eval-every 0); rerun stage 5 in a new --data-dir to record them"
        )
    return state["checks"]


def scored_tracks(checks: list[dict]) -> int:
    """How many validation tracks every check was scored on."""
    return min(len(c["scores"]) for c in checks)


def means(checks: list[dict], tracks: int) -> np.ndarray:
    """Each check's mean over the first `tracks` validation tracks."""
    n = scored_tracks(checks)
    if not 0 < tracks <= n:
        raise StageError(f"--tracks must be between 1 and the {n} validation tracks the run scored, got {tracks}")
    return np.array([np.mean(c["scores"][:tracks]) for c in checks])


def choose(checks: list[dict], tracks: int) -> int:
    """Index of the check the first `tracks` validation tracks keep (the earliest of equal means, as
    stage 5 keeps the first it meets)."""
    return int(np.argmax(means(checks, tracks)))


def extend(run, source_dir: Path, checks: list[dict], n: int, first: int) -> list[dict]:
    """`checks` with each one's scores on the n validation tracks after their first `first`, played in
    the real env (cached in source_dir/revalidate.json, written after each candidate)."""
    from worldmodels.io.artifacts import controller_fingerprint, read_json, write_json
    from worldmodels.io.seeding import eval_seeds
    from worldmodels.runtime.rollout import agent_pool, map_episodes
    from worldmodels.stages.train_controller import VALIDATION_OFFSET

    cfg = read_json(source_dir / "config.json", "controller")
    trained = cfg.get("config", {})
    if trained.get("train_in", "real") != "real":
        raise StageError(f"{source_dir} was validated in the dream; --extend plays real validation tracks only")
    seeds = eval_seeds(n, VALIDATION_OFFSET + first)
    cache_path = source_dir / "revalidate.json"
    cache = read_json(cache_path, "controller") if cache_path.exists() else {}
    if cache.get("seeds") != [seeds[0], seeds[-1]]:
        cache = {"seeds": [seeds[0], seeds[-1]], "candidates": {}}
    max_steps, fast = int(trained["eval_max_steps"]), bool(trained.get("fast_env", False))
    out = []
    with agent_pool(run.env, run.data_dir, cfg["inputs"], fast, run.workers, run.ray_address) as pool:
        for c in checks:
            params = np.asarray(c["params"], np.float32)
            key = f"{c['generation']}/{c['name']}/{controller_fingerprint(params)}"
            if key not in cache["candidates"]:
                tasks = [(params, s, max_steps, 0) for s in seeds]
                desc = f"generation {c['generation']} {c['name']}"
                results = map_episodes(pool, tasks, run.envs_per_worker, desc=desc)
                cache["candidates"][key] = [float(r) for r, _ in results]
                write_json(cache_path, cache)
            out.append({**c, "scores": [*c["scores"][:first], *cache["candidates"][key]]})
    return out


def write_params(data_dir: Path, source: str, name: str, params, generation: int, selected: str) -> Path:
    """<data-dir>/<name>/ as a controller directory holding `params`, its config the `source`
    controller's with the generation, how it was selected and the new fingerprint."""
    from worldmodels.io.artifacts import atomic_path, controller_fingerprint, read_json, write_json

    params = np.asarray(params, np.float32)
    config = read_json(data_dir / source / "config.json", "controller")
    out = data_dir / name
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "best.npz") as tmp:
        np.savez(tmp, params=params, mean=params)
    fingerprint = controller_fingerprint(params)
    write_json(
        out / "config.json",
        {**config, "generation": generation, "selected_by": selected, "fingerprint": fingerprint},
    )
    return out


def write_controller(data_dir: Path, source: str, name: str, check: dict, tracks: int) -> Path:
    """<data-dir>/<name>/ as a controller directory holding `check`'s parameters."""
    if name == source:
        raise StageError(f"--write {name} would overwrite the run's own controller; pick another name")
    selected = f"validation on the first {tracks} tracks: generation {check['generation']} {check['name']}"
    return write_params(data_dir, source, name, check["params"], check["generation"], selected)


def build_parser():
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--tracks", type=int, nargs="+", default=[8], help="validation track counts to compare")
        p.add_argument("--name", default="controller", help="the controller directory whose search to read")
        p.add_argument("--write", default="", help="write the first --tracks count's choice as this controller")
        p.add_argument("--extend", type=int, default=0, help="score the candidates on this many more validation tracks")
        p.add_argument("--from-generation", type=int, default=0, help="only the checks from this generation on")

    return build_cli_parser(
        __doc__,
        run_flags=("env", "preset", "data_dir", "workers", "ray_address"),
        extra=extra,
        prog="worldmodels revalidate",
    )


def main(argv: list[str] | None = None) -> int:
    from worldmodels.cli import parse_tool, report_errors

    p = build_parser()
    run, a = parse_tool(p, argv)

    def body():
        checks = load_checks(run.data_dir / a.name / "es_state.pkl")
        checks = [c for c in checks if c["generation"] >= a.from_generation]
        if not checks:
            raise StageError(f"no checks from generation {a.from_generation} on in {run.data_dir / a.name}")
        if a.extend < 0:
            raise StageError(f"--extend must be 0 or more, got {a.extend}")
        if a.extend:
            checks = extend(run, run.data_dir / a.name, checks, a.extend, scored_tracks(checks))
        counts = sorted({*a.tracks, scored_tracks(checks)})
        table = {k: means(checks, k) for k in counts}
        picks = {k: int(np.argmax(table[k])) for k in counts}
        print("| generation | candidate | " + " | ".join(f"mean, first {k}" for k in counts) + " |")
        print("|---|---|" + "---|" * len(counts))
        for i, c in enumerate(checks):
            cells = [f"{table[k][i]:.1f}{' (kept)' if picks[k] == i else ''}" for k in counts]
            print(f"| {c['generation']} | {c['name']} | " + " | ".join(cells) + " |")
        if a.write:
            out = write_controller(run.data_dir, a.name, a.write, checks[picks[a.tracks[0]]], a.tracks[0])
            evaluate = f"python -m worldmodels.evaluate --data-dir {run.data_dir} --name {a.write}"
            print(f"wrote {out}: score it with {evaluate}")

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
