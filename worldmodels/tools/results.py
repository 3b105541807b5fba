"""docs/results.md: every measured score in results/, one table per environment, rebuilt from the files.

Example:  python -m worldmodels.results            (rewrite docs/results.md)
          python -m worldmodels.results --check    (exit 1 when docs/results.md is not what it would write)
          python -m worldmodels.results --paired results/A.json results/B.json   (B - A on their shared seeds)

Each results/*.json is a result of `python -m worldmodels.evaluate --out results/NAME.json` (add
`--label TEXT` to name it here): the policy and the weights it scored (their fingerprints), the
seed range and seeds, per-episode scores, mean, std, standard error, the command, the commit and
the machine. A figure in the README or a model card names the file it comes from
(`unbacked_figures` finds one that does not).

docs/results.md opens with the paper's two tables at laptop scale (`TABLE1`, `TABLE2`: which file
fills each row, the paper's value beside it); a row whose file is not there yet says so and gives
the command that makes it.

`--paired A B` compares two results on the episodes (seeds) they share: B's score minus A's, per
episode, then the mean difference and its standard error. Where a hard episode is hard for both
agents, the paired standard error is smaller than the two means' own ones suggest; where it is not
(CarRacing's chaotic tracks), it says so by being larger. A lever is judged by this figure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from worldmodels import paper
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


def _shown_path(path: Path) -> str:
    """A results file's path as tables and messages show it: from the repository root when inside it."""
    path = Path(path)
    return str(path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path)


def load_results(results_dir: Path = RESULTS) -> list[dict]:
    """Every results file, with "file" (its path from the repository root) added; a file that is not a
    result is an error naming it."""
    rows = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            r = read_result(path)
        except StageError as e:
            raise SystemExit(str(e)) from e
        rows.append({**r, "file": _shown_path(path)})
    return rows


def score_decimals(mean: float, std: float) -> int:
    """Decimals to show a score with: 1 (CarRacing's hundreds, Doom's steps), 2 when mean and std
    are both under 10 (an Atari game's few points, where one decimal would round the standard
    error to 0.0)."""
    return 2 if max(abs(mean), std) < 10 else 1


def summary_cells(scores, good: float | None) -> str:
    """'mean ± std | standard error | share at `good` or more' of per-episode scores (table cells)."""
    a = np.asarray(scores, np.float64)
    share = f"{np.mean(a >= good):.1%}" if good is not None else "-"
    d = score_decimals(a.mean(), a.std())
    return f"{a.mean():.{d}f} ± {a.std():.{d}f} | {a.std() / np.sqrt(len(a)):.{d}f} | {share}"


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
        f"{r.get('renderer', '-')} | {fp} | {commit} | [{Path(r['file']).name}](../results/{Path(r['file']).name}) |"
    )


_T1 = paper.CARRACING_TABLE1
TABLE1 = [
    # (row, results file, the paper's (mean, std) or None, the command that makes the file)
    ("random policy", "carracing-random-final-4e9-200.json", None, "--policy random --episodes 200"),
    ("V only (C on z)", "carracing-laptop-z-final-4e9-100.json", _T1["V only"], "--data-dir data/carracing-z"),
    ("V + hidden layer (C on z, 40 hidden units)", None, _T1["V + hidden layer"], None),
    (
        "full World Model (C on [z h]): `pretrained/carracing-laptop`",
        "carracing-laptop-t120-final-4e9-200.json",
        _T1["full world model"],
        "--data-dir pretrained/carracing-laptop --episodes 200",
    ),
    (
        "full World Model, C trained only in the dream (tau 1.0), scored in the real env",
        "carracing-laptop-dream-final-4e9-100.json",
        None,
        "--data-dir data/carracing-dream",
    ),
    (
        "full World Model with a VAE-GAN as V (the laptop preset's V, M and C budgets; docs/vaegan.md)",
        "carracing-laptop-vaegan-final-4e9-100.json",
        None,
        "--data-dir data/carracing-vaegan-l",
    ),
]
"""The paper's Table 1 (CarRacing), laptop preset, final range. The paper's V + hidden layer row has
no counterpart here (the controller is linear)."""

TABLE2_TEMPERATURES = (0.1, 0.5, 1.0, 1.15, 1.3)
"""The paper's Table 2 (Doom): C trained in the dream at each temperature, on one V and one M
(`data/doom-t2`); files doom-laptop-tau<T>-{dream,final}-4e9-200.json."""


def table2_files(tau: float) -> tuple[str, str]:
    """(dream score file, real score file) of Table 2's row for temperature `tau`."""
    return f"doom-laptop-tau{tau:g}-dream-4e9-200.json", f"doom-laptop-tau{tau:g}-final-4e9-200.json"


def _cells(r: dict | None, good: bool = True) -> str:
    """'mean ± std (s.e.) | episodes (seeds) [| share good]' of a result, or a not-measured cell."""
    if r is None:
        return "not measured yet |" + (" |" if good else "")
    a = np.asarray(r["scores"], np.float64)
    text = f"{a.mean():.1f} ± {a.std():.1f} ({a.std() / np.sqrt(len(a)):.1f}) | {len(a)} ({r['seeds'][0]} ..)"
    if good:
        share = _stats(r)["share_good"]
        text += f" | {'-' if share is None else f'{share:.1%}'}"
    return text


def _link(r: dict | None, name: str | None) -> str:
    return f"[{name}](../results/{name})" if r is not None else (f"`results/{name}`" if name else "-")


def _paper(ref: tuple | None) -> str:
    return "-" if ref is None else f"{ref[0]} ± {ref[1]}"


def render_tables(rows: list[dict]) -> list[str]:
    """The markdown of Table 1 and Table 2 from the results files among `rows` (by file name)."""
    by_name = {Path(r["file"]).name: r for r in rows}
    lines = [
        "## Table 1: CarRacing-v3, laptop preset",
        "",
        "Stock env, final-range tracks (seeds from 4x10^9), each agent scored once. Cells: mean ± std",
        "(standard error); good: share of tracks at 700 or more. The paper's column: CarRacing-v0, 100",
        "random tracks.",
        "",
        "| method | ours: mean ± std (s.e.) | tracks (first seed) | good | paper | file |",
        "|---|---|---|---|---|---|",
    ]
    for what, name, ref, cmd in TABLE1:
        r = by_name.get(name) if name else None
        cells = _cells(r) if name else "not run (C is linear here) | | "
        make = f"`{EVALUATE} {cmd} --seed-range final --out results/{name}`"
        missing = f" (make it: {make})" if name and r is None else ""
        lines.append(f"| {what} | {cells} | {_paper(ref)} | {_link(r, name)}{missing} |")
    lines += [
        "",
        "## Table 2: DoomTakeCover, laptop preset, C trained only in the dream",
        "",
        "One V and one M (`data/doom-t2`: the laptop run's V, M retrained on its series); C trained in the",
        "dream at each temperature, then scored in the dream and in the real game on final-range seeds",
        "(from 4x10^9), each once. Cells: mean ± std (standard error) of steps survived; good: share of",
        "real episodes at 750 or more.",
        "",
        "| temperature | dream score | dream episodes | real score | real episodes | good | paper dream | paper real "
        "| files |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for tau in TABLE2_TEMPERATURES:
        dream_name, real_name = table2_files(tau)
        dream, real = by_name.get(dream_name), by_name.get(real_name)
        ref = paper.DOOM_TABLE2.get(round(tau, 2))
        std = paper.DOOM_TABLE2_REAL_STD.get(round(tau, 2))
        lines.append(
            f"| {tau:g} | {_cells(dream, good=False)} | {_cells(real)} | {ref[0] if ref else '-'} | "
            f"{f'{ref[1]} ± {std}' if ref else '-'} | {_link(dream, dream_name)}, {_link(real, real_name)} |"
        )
    random = by_name.get("doom-random-final-4e9-300.json")
    lines += [
        f"| random policy | - | - | {_cells(random)} | - | {_paper(paper.DOOM_RANDOM)} | "
        f"{_link(random, 'doom-random-final-4e9-300.json')} |",
        "",
    ]
    return lines


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
        *render_tables(rows),
        "## Every result",
        "",
    ]
    for env in sorted({r["env"] for r in rows}):
        mine = sorted(
            (r for r in rows if r["env"] == env),
            key=lambda r: (RANGE_ORDER.get(r.get("seed_range"), 2), r.get("policy") == "random", r["file"]),
        )
        lines += [
            f"### {env}",
            "",
            "| what | range | seeds | episodes | mean ± std | s.e. | good | renderer | controller | commit | file |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *map(_row, mine),
            "",
        ]
    return "\n".join(lines)


def _paper_pairs() -> set[tuple[float, float]]:
    pairs = set(paper.CARRACING_TABLE1.values()) | {paper.DOOM_RANDOM}
    pairs |= {(real, paper.DOOM_TABLE2_REAL_STD[t]) for t, (_, real) in paper.DOOM_TABLE2.items()}
    return {(float(m), float(s)) for m, s in pairs}


def _number(text: str) -> tuple[float, int]:
    """('1,092.5' -> (1092.5, 1)): the value and its decimals."""
    text = text.replace(",", "")
    return float(text), len(text.split(".")[1]) if "." in text else 0


def _shown(value: float, decimals: int) -> float:
    return round(float(value), decimals)


def _stats(r: dict) -> dict:
    """mean, std, standard error and share of good episodes, from a result's own per-episode scores."""
    a = np.asarray(r["scores"], np.float64)
    good = r.get("good_score") or _good_score(r["env"])
    share = None if good is None else float(np.mean(a >= good))
    return {"mean": a.mean(), "std": a.std(), "standard_error": a.std() / np.sqrt(len(a)), "share_good": share}


def unbacked_figures(text: str, results_dir: Path = RESULTS) -> list[str]:
    """Every score figure in `text` (markdown prose) that no results file it names gives: per
    paragraph that states a score ('A ± B' or 'standard error X'), each 'A ± B' must be the mean and
    std of a results file the paragraph (or table row) names, as rounded there, or a pair of the paper's
    (`worldmodels.paper`); each 'standard error X' and 'P% of' a named file's standard error and share
    of good episodes. Returns one line per figure that is not."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    problems, paper_pairs, num = [], _paper_pairs(), r"-?\d[\d,]*(?:\.\d+)?"
    units = []
    for para in re.split(r"\n\s*\n", text):  # a paragraph, or each row of a table
        rows = para.strip().splitlines()
        units += rows if rows and all(r.lstrip().startswith("|") for r in rows) else [para]
    for para in units:
        pairs = re.findall(rf"({num}) ± ({num})", para)
        errors = re.findall(rf"standard error ({num})", para)
        if not pairs and not errors:
            continue
        named = []
        for name in sorted(set(re.findall(r"(?:(?<=\.\./)|(?<![\w/]))results/([\w.-]+\.json)", para))):
            if (Path(results_dir) / name).exists():  # a table may name a file still to be made
                try:
                    named.append(read_result(Path(results_dir) / name))
                except StageError as e:
                    problems.append(str(e))
        where = " ".join(para.split())[:80]
        named = [_stats(r) for r in named]
        for m_text, s_text in pairs:
            (m, dm), (sd, ds) = _number(m_text), _number(s_text)
            if (m, sd) in paper_pairs:
                continue
            if not any((_shown(r["mean"], dm), _shown(r["std"], ds)) == (m, sd) for r in named):
                problems.append(f"{m_text} ± {s_text} is in no results file the paragraph names: {where}...")
        for e_text in errors:
            e, de = _number(e_text)
            if not any(_shown(r["standard_error"], de) == e for r in named):
                problems.append(f"standard error {e_text} is in no results file the paragraph names: {where}...")
        for p_text in re.findall(rf"({num})% of", para):
            p, dp = _number(p_text)
            if not any(r.get("share_good") is not None and _shown(100 * r["share_good"], dp) == p for r in named):
                problems.append(f"{p_text}% is no share of good episodes in the files the paragraph names: {where}...")
    return problems


def episode_scores(r: dict) -> dict[int, float]:
    """{env seed: score} of a result (its seeds are first .. last, one score each, in order)."""
    first, last = r["seeds"]
    if last - first + 1 != len(r["scores"]):
        raise StageError(f"{r.get('file', 'result')}: seeds {first}..{last} but {len(r['scores'])} scores")
    return {first + i: float(s) for i, s in enumerate(r["scores"])}


def paired(a: dict, b: dict) -> dict:
    """B minus A on the seeds both results scored (same env, same place: real or dream): episodes,
    mean difference, its std and standard error, how often B scored higher, lower or the same, and
    both means on those seeds. StageError when they share no seed or differ in env or place."""
    for key, default in (("env", None), ("where", "real")):
        va, vb = a.get(key, default), b.get(key, default)
        if va != vb:
            raise StageError(f"{a['file']} and {b['file']} differ in {key}: {va} vs {vb}")
    sa, sb = episode_scores(a), episode_scores(b)
    seeds = sorted(set(sa) & set(sb))
    if not seeds:
        raise StageError(f"{a['file']} and {b['file']} share no seed; score both with the same --seed-offset")
    xa, xb = np.array([sa[s] for s in seeds]), np.array([sb[s] for s in seeds])
    d = xb - xa
    return {
        "episodes": len(seeds),
        "seeds": [seeds[0], seeds[-1]],
        "mean_a": float(xa.mean()),
        "mean_b": float(xb.mean()),
        "difference": float(d.mean()),
        "std": float(d.std()),
        "standard_error": float(d.std() / np.sqrt(len(d))),
        "b_higher": int(np.sum(d > 0)),
        "b_lower": int(np.sum(d < 0)),
    }


def paired_text(a: dict, b: dict) -> str:
    """What `--paired A B` prints."""
    p = paired(a, b)
    dec = score_decimals(p["mean_a"], abs(p["difference"]))
    return (
        f"A: {a['file']} ({_what(a)})\nB: {b['file']} ({_what(b)})\n"
        f"{p['episodes']} shared episodes (seeds {p['seeds'][0]}..{p['seeds'][1]}): "
        f"A {p['mean_a']:.{dec}f}, B {p['mean_b']:.{dec}f}\n"
        f"B - A: {p['difference']:+.{dec}f} ± {p['std']:.{dec}f} (standard error {p['standard_error']:.{dec}f}); "
        f"B higher on {p['b_higher']}, lower on {p['b_lower']}, equal on {p['episodes'] - p['b_higher'] - p['b_lower']}"
    )


def _named_result(path: str) -> dict:
    return {**read_result(Path(path)), "file": _shown_path(path)}


def build_parser() -> argparse.ArgumentParser:
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--check", action="store_true", help="exit 1 if docs/results.md is stale; write nothing")
        p.add_argument(
            "--paired",
            nargs=2,
            metavar=("A", "B"),
            help="print B's score minus A's on the episodes both results files scored; write nothing",
        )

    return build_cli_parser(__doc__, run_flags=(), extra=extra, prog="worldmodels results")


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.paired:
        from worldmodels.cli import report_errors

        return report_errors(lambda: print(paired_text(*(_named_result(f) for f in a.paired))))
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
