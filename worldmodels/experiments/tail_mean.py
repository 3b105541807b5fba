"""The mean of a search's last CMA-ES means: one controller averaged along the tail of the search.

Example:  python -m worldmodels.experiments.tail_mean --env carracing --data-dir data/carracing-t120 --write tail3
          python -m worldmodels.experiments.tail_mean --env doom --data-dir data/doom --last 3 --write tail3 \\
              --name controller/search-0 controller/search-1 controller/search-2
Reads:    <data-dir>/<name>/es_state.pkl for each --name (the CMA-ES mean of every checked generation)
Writes:   <data-dir>/<write>/best.npz and config.json, for `python -m worldmodels.evaluate --name <write>`

Late in a search candidates a few generations apart differ by tens of points on the same tracks
(docs/carracing-score.md), and the mean of three searches' controllers beats their average on doom
(docs/doom-score.md). This averages the CMA-ES means of the last --last checked generations of each
named search, then averages over the searches: a linear controller's output is linear in its
parameters, so the result steers by the average of those controllers' pre-activations. It costs no
search; the development range tells whether it helps.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from worldmodels.experiments.revalidate import load_checks, write_params
from worldmodels.io.artifacts import StageError


def tail_means(checks: list[dict], last: int) -> list[dict]:
    """The CMA-ES mean checks of the last `last` checked generations, oldest first."""
    means = [c for c in checks if c["name"] == "mean"]
    if not 0 < last <= len(means):
        raise StageError(f"--last must be between 1 and the {len(means)} checked generations, got {last}")
    return means[-last:]


def tail_mean(searches: list[list[dict]], last: int) -> tuple[np.ndarray, list[list[int]]]:
    """The mean over searches of the mean of each one's last `last` CMA-ES means, and the generations used."""
    tails = [tail_means(checks, last) for checks in searches]
    sizes = {np.asarray(c["params"]).shape for tail in tails for c in tail}
    if len(sizes) != 1:
        raise StageError(f"the searches' controllers differ in shape ({sorted(sizes)}); average one run's searches")
    per_search = [np.mean([np.asarray(c["params"], np.float64) for c in tail], axis=0) for tail in tails]
    params = np.mean(per_search, axis=0).astype(np.float32)
    return params, [[int(c["generation"]) for c in tail] for tail in tails]


def write_controller(data_dir: Path, sources: list[str], name: str, params: np.ndarray, generations) -> Path:
    """<data-dir>/<name>/ as a controller directory holding `params`, its config the first source's."""
    if name in sources or name == "controller":
        raise StageError(f"--write {name} would overwrite a run's own controller; pick another name")
    gens = "; ".join(f"{s}: generations {', '.join(map(str, g))}" for s, g in zip(sources, generations))
    selected = f"the mean of the last {len(generations[0])} checked CMA-ES means ({gens})"
    return write_params(data_dir, sources[0], name, params, max(max(g) for g in generations), selected)


def build_parser():
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--last", type=int, default=3, help="how many of the last checked CMA-ES means to average")
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
        searches = [load_checks(run.data_dir / n / "es_state.pkl") for n in a.name]
        params, generations = tail_mean(searches, a.last)
        out = write_controller(run.data_dir, a.name, a.write, params, generations)
        print(f"wrote {out}: score it with python -m worldmodels.evaluate --data-dir {run.data_dir} --name {a.write}")

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
