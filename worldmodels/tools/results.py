"""docs/results.md: every measured score in results/, one table per environment, rebuilt from the files.

Example:  python -m worldmodels.results            (rewrite docs/results.md)
          python -m worldmodels.results --check    (exit 1 when docs/results.md is not what it would write)

Each results/*.json is a result of `python -m worldmodels.evaluate --out results/NAME.json` (add
`--label TEXT` to name it here): the policy and the weights it scored (their fingerprints), the
seed range and seeds, per-episode scores, mean, std, standard error, the command, the commit and
the machine. A figure in the README or a model card names the file it comes from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from worldmodels.io.artifacts import StageError, atomic_path

ROOT = Path(__file__).resolve().parents[2]
RESULTS, DOC = ROOT / "results", ROOT / "docs" / "results.md"
RANGE_ORDER = {"final": 0, "development": 1}
EVALUATE = "python -m worldmodels.evaluate"


def read_result(path: Path) -> dict:
    """One results file of `python -m worldmodels.evaluate`; StageError naming it when it is missing
    or not a result (no env or per-episode scores)."""
    try:
        r = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise StageError(f"results file {path} does not exist; make it with `{EVALUATE} --out {path}`") from e
    except ValueError as e:
        raise StageError(f"{path} is not valid JSON ({e}); remake it with `{EVALUATE}`") from e
    if not isinstance(r, dict) or not r.get("scores") or "env" not in r:
        raise StageError(f"{path} is not a result of `{EVALUATE}` (no env or per-episode scores)")
    return r


def load_results(results_dir: Path = RESULTS) -> list[dict]:
    """Every results file, with "file" (its path from the repository root) added; a file that is not a
    result is an error naming it."""
    rows = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            r = read_result(path)
        except StageError as e:
            raise SystemExit(str(e)) from e
        rel = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        rows.append({**r, "file": str(rel)})
    return rows


def summary_cells(scores, good: float | None) -> str:
    """'mean ± std | standard error | share at `good` or more' of per-episode scores (table cells)."""
    a = np.asarray(scores, np.float64)
    share = f"{np.mean(a >= good):.1%}" if good is not None else "-"
    return f"{a.mean():.1f} ± {a.std():.1f} | {a.std() / np.sqrt(len(a)):.1f} | {share}"


def _good_score(env: str) -> float | None:
    from worldmodels.envs.registry import get_spec

    try:
        return get_spec(env).good_score
    except ValueError:  # an env this checkout does not know: no share column
        return None


def _what(r: dict) -> str:
    if r.get("label"):
        return r["label"]
    if r.get("policy") == "random":
        return "random policy"
    model = r.get("model") or {}
    return f"agent `{model['dir']}`" if model.get("dir") else "agent"


def _row(r: dict) -> str:
    seeds = r.get("seeds") or ["?", "?"]
    commit = (r.get("commit") or "-")[:7] + ("-dirty" if str(r.get("commit", "")).endswith("-dirty") else "")
    fp = (r.get("model") or {}).get("controller_fingerprint", "-")
    cells = summary_cells(r["scores"], r.get("good_score") or _good_score(r["env"]))
    return (
        f"| {_what(r)} | {r.get('seed_range', '?')} | {seeds[0]} .. {seeds[-1]} | {len(r['scores'])} | {cells} | "
        f"{r.get('renderer', '-')} | {fp} | {commit} | [{Path(r['file']).name}](../{r['file']}) |"
    )


def render(rows: list[dict]) -> str:
    """The text of docs/results.md for these results."""
    lines = [
        "# Measured results",
        "",
        "Written by `python -m worldmodels.results` from the files in `results/` (do not edit by hand;",
        "`make results` rewrites it, and a test fails when it is stale). Each file holds the per-episode",
        "scores, the command that made them, the commit, the machine and the date. Seed ranges",
        "(`worldmodels/io/seeding.py`): **final** (from 4x10^9) scores an agent once, when it ships;",
        "**development** (from 2x10^9) is where every choice is judged. Good episodes: CarRacing >= 700,",
        "Doom >= 750 steps.",
        "",
    ]
    for env in sorted({r["env"] for r in rows}):
        mine = sorted(
            (r for r in rows if r["env"] == env),
            key=lambda r: (RANGE_ORDER.get(r.get("seed_range"), 2), r.get("policy") == "random", r["file"]),
        )
        lines += [
            f"## {env}",
            "",
            "| what | range | seeds | episodes | mean ± std | s.e. | good | renderer | controller | commit | file |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *map(_row, mine),
            "",
        ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--check", action="store_true", help="exit 1 if docs/results.md is stale; write nothing")

    return build_cli_parser(__doc__, run_flags=(), extra=extra, prog="worldmodels results")


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    rows = load_results()
    text = render(rows)
    if a.check:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is stale: run `python -m worldmodels.results` (or `make results`)", file=sys.stderr)
            return 1
        print(f"{DOC} is up to date")
        return 0
    with atomic_path(DOC) as tmp:
        tmp.write_text(text)
    print(f"wrote {DOC} ({len(rows)} results)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
