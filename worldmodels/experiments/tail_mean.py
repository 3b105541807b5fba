"""The mean of a search's last CMA-ES means: one controller averaged along the tail of the search;
or, with --pick validation, the mean of several searches' validation-chosen controllers.

Example:  python -m worldmodels.experiments.tail_mean --env carracing --data-dir data/carracing-t120 --write tail3
          python -m worldmodels.experiments.tail_mean --env doom --data-dir data/doom --last 3 --write tail3 \\
              --name controller/search-0 controller/search-1 controller/search-2
          python -m worldmodels.experiments.tail_mean --env carracing --data-dir data/carracing-pre --pick validation \\
              --up-to-generation 60 --write mean2-g60 --name controller ../carracing-s1/controller
Reads:    <data-dir>/<name>/es_state.pkl for each --name (every checked candidate, with its validation scores)
Writes:   <data-dir>/<write>/best.npz and config.json, for `python -m worldmodels.evaluate --name <write>`

Late in a search candidates a few generations apart differ by tens of points on the same tracks
(docs/carracing-score.md), and the mean of three searches' controllers beats their average on doom
(docs/doom-score.md). This averages the CMA-ES means of the last --last checked generations of each
named search, then averages over the searches: a linear controller's output is linear in its
parameters, so the result steers by the average of those controllers' pre-activations. It costs no
search; the development range tells whether it helps.

--pick validation averages instead the candidate each search's validation tracks chose (what stage 5
keeps, and what `--searches N --combine mean` averages), and --up-to-generation G looks only at the
checks of generations up to G: the controller that searches stopped at G would have kept, without
running them again (a search's first G generations do not depend on --generations).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from worldmodels.experiments.revalidate import choose, load_checks, scored_tracks, write_params
from worldmodels.io.artifacts import StageError
from worldmodels.models.controller import committee


def tail_means(checks: list[dict], last: int) -> list[dict]:
    """The CMA-ES mean checks of the last `last` checked generations, oldest first."""
    means = [c for c in checks if c["name"] == "mean"]
    if not 0 < last <= len(means):
        raise StageError(f"--last must be between 1 and the {len(means)} checked generations, got {last}")
    return means[-last:]


def _check_shapes(checks: list[dict]) -> None:
    sizes = {np.asarray(c["params"]).shape for c in checks}
    if len(sizes) != 1:
        raise StageError(f"the searches' controllers differ in shape ({sorted(sizes)}); average one run's searches")


def up_to(checks: list[dict], generation: int | None) -> list[dict]:
    """The checks of generations up to `generation` (all when None)."""
    if generation is None:
        return checks
    kept = [c for c in checks if c["generation"] <= generation]
    if not kept:
        raise StageError(f"no check at or before generation {generation}; the first is {checks[0]['generation']}")
    return kept


def chosen_mean(searches: list[list[dict]]) -> tuple[np.ndarray, list[list[int]], list[str]]:
    """The mean over searches of the candidate each one's validation tracks chose, their generations and
    check names (the mean of each check's scores on all the tracks the search scored, as stage 5 keeps)."""
    picks = [checks[choose(checks, scored_tracks(checks))] for checks in searches]
    _check_shapes(picks)
    return committee([c["params"] for c in picks]), [[int(c["generation"])] for c in picks], [c["name"] for c in picks]


def tail_mean(searches: list[list[dict]], last: int) -> tuple[np.ndarray, list[list[int]]]:
    """The mean over searches of the mean of each one's last `last` CMA-ES means, and the generations used."""
    tails = [tail_means(checks, last) for checks in searches]
    _check_shapes([c for tail in tails for c in tail])
    per_search = [np.mean([np.asarray(c["params"], np.float64) for c in tail], axis=0) for tail in tails]
    params = np.mean(per_search, axis=0).astype(np.float32)
    return params, [[int(c["generation"]) for c in tail] for tail in tails]


def write_controller(
    data_dir: Path, sources: list[str], name: str, params: np.ndarray, generations, picked: list[str] | None = None
) -> Path:
    """<data-dir>/<name>/ as a controller directory holding `params`, its config the first source's
    (`picked`: the check names of --pick validation; None for the tail mean)."""
    if name in sources or name == "controller":
        raise StageError(f"--write {name} would overwrite a run's own controller; pick another name")
    if picked is None:
        gens = "; ".join(f"{s}: generations {', '.join(map(str, g))}" for s, g in zip(sources, generations))
        selected = f"the mean of the last {len(generations[0])} checked CMA-ES means ({gens})"
    else:
        each = "; ".join(f"{s}: generation {g[0]} {n}" for s, g, n in zip(sources, generations, picked))
        many = f"the mean of {len(sources)} searches' validation-chosen controllers"
        selected = f"{many if len(sources) > 1 else 'the validation-chosen controller'} ({each})"
    return write_params(data_dir, sources[0], name, params, max(max(g) for g in generations), selected)


def build_parser():
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--last", type=int, default=3, help="how many of the last checked CMA-ES means to average")
        p.add_argument(
            "--pick",
            choices=("tail", "validation"),
            default="tail",
            help="'tail': each search's last --last CMA-ES means; 'validation': the candidate its validation chose",
        )
        p.add_argument(
            "--up-to-generation", type=int, default=None, help="only the checks of generations up to this one"
        )
        p.add_argument("--name", nargs="+", default=["controller"], help="controller directories to read")
        p.add_argument("--write", required=True, help="the controller directory to write the average to")

    return build_cli_parser(
        __doc__, run_flags=("env", "preset", "data_dir"), extra=extra, prog="worldmodels tail_mean"
    )


def main(argv: list[str] | None = None) -> int:
    from worldmodels.cli import parse_tool, report_errors

    p = build_parser()
    run, a = parse_tool(p, argv)

    def body():
        searches = [up_to(load_checks(run.data_dir / n / "es_state.pkl"), a.up_to_generation) for n in a.name]
        if a.pick == "validation":
            params, generations, picked = chosen_mean(searches)
        else:
            (params, generations), picked = tail_mean(searches, a.last), None
        out = write_controller(run.data_dir, a.name, a.write, params, generations, picked)
        print(f"wrote {out}: score it with python -m worldmodels.evaluate --data-dir {run.data_dir} --name {a.write}")

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
