"""Package a trained agent for shipping: the numpy weights evaluation and videos need, and a model card.

Example:  python -m worldmodels.export_pretrained --data-dir data/carracing --out pretrained/carracing-laptop \\
              --command "make run" --results results/carracing-laptop-final-4e9-200.json

Writes to --out: vision/ (config.json, encoder.npz, decoder.npz in float16), memory/ (config.json,
rnn.npz), controller/ (config.json, best.npz, eval.json, generations.csv, cmaes.png), timings.json,
and MODEL_CARD.md (the command, seeds, each stage's wall time, the scores). `worldmodels.tools.evaluate`
and `worldmodels.tools.play` take the folder as --data-dir.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from worldmodels import paper
from worldmodels.envs.registry import get_spec, recorded_renderer
from worldmodels.io.artifacts import (
    Paths,
    StageError,
    atomic_path,
    ensure_writable,
    read_json,
    write_json,
)


def export(data_dir: Path, out: Path, command: str, machine: str, results: list[Path] | None = None) -> Path:
    from worldmodels.models.loading import load_agent_weights, load_vision, read_config
    from worldmodels.models.vae import export_decoder

    src, data_dir = Paths(data_dir), Path(data_dir)
    env = read_config(data_dir, "controller")["env"]
    weights = load_agent_weights(data_dir, env)  # every model validated before anything is written
    v_cfg, c_cfg = weights["vision"], weights["controller"]
    _, vae = load_vision(SimpleNamespace(data_dir=data_dir, env=env), need_keras=True)
    ev = read_json(src.controller / "eval.json", "controller", SimpleNamespace(data_dir=data_dir))
    scores = ev.get("real", {}).get("scores") if isinstance(ev.get("real"), dict) else None
    if not scores or not np.all(np.isfinite(scores)):
        raise StageError(f"{src.controller / 'eval.json'} holds no finite held-out scores; rerun stage 5 to score it")
    scored = [_result_row(Path(p), weights) for p in results or []]  # checked before anything is written
    ensure_writable(out)
    dst = Paths(out)
    for d in (dst.vision, dst.memory, dst.controller):
        d.mkdir(parents=True, exist_ok=True)
    copies = [
        (src.vision / "config.json", dst.vision),
        (src.vision / "encoder.npz", dst.vision),
        (src.memory / "config.json", dst.memory),
        (src.memory / "rnn.npz", dst.memory),
        (src.controller / "config.json", dst.controller),
        (src.controller / "eval.json", dst.controller),
        (src.controller / "generations.csv", dst.controller),
        (src.controller / "cmaes.png", dst.controller),
        (src.controller / "selection.json", dst.controller),  # with --searches N: how the search was chosen
    ]
    for f, d in copies:
        if f.exists():
            with atomic_path(d / f.name) as tmp:
                shutil.copyfile(f, tmp)
    with atomic_path(dst.controller / "best.npz") as tmp:
        np.savez(tmp, params=weights["params"])
    with atomic_path(dst.vision / "decoder.npz") as tmp:
        np.savez_compressed(tmp, **export_decoder(vae))
    timings = _optional_json(data_dir / "timings.json") or []
    rounds_md = data_dir.parent / "rounds.md"  # a round of `worldmodels.tools.iterate`: its stages and the history
    if not timings and (data_dir / "round.json").exists():
        secs = json.loads((data_dir / "round.json").read_text()).get("seconds", {})
        timings = [{"stage": f"{k} (this round)", "seconds": v} for k, v in secs.items()]
    write_json(out / "timings.json", timings)
    rnd = data_dir / "evaluate_random.json"
    random = _optional_json(rnd)
    history = rounds_md.read_text() if (data_dir / "round.json").exists() and rounds_md.exists() else None
    with atomic_path(out / "MODEL_CARD.md") as tmp:
        tmp.write_text(model_card(data_dir, out, v_cfg, c_cfg, ev, timings, random, command, machine, history, scored))
    return out


def _optional_json(path: Path):
    """A JSON file's content, or None when it is missing or unreadable (optional extras of a card)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _result_row(path: Path, weights: dict) -> dict:
    """A results file (`worldmodels.evaluate`'s JSON) for the card; an agent's must have scored these
    very weights (its fingerprints), so a card never quotes another agent's score."""
    from worldmodels.models.loading import agent_fingerprints
    from worldmodels.tools.results import read_result

    r = read_result(path)
    if r.get("policy") == "agent":
        model, mine = r.get("model") or {}, agent_fingerprints(weights)
        if any(model.get(k) != v for k, v in mine.items()):
            raise StageError(
                f"{path} scored other weights ({model or 'no fingerprints recorded'}) than this agent's ({mine}); "
                f"score this agent with `python -m worldmodels.evaluate --data-dir DIR --out {path}`"
            )
    return {"path": str(path), **r}


def _score_row(label: str, record: dict, source: str, good: float | None) -> str:
    """One row of the card's score table from per-episode scores: episodes and seeds, renderer,
    mean ± std, standard error, the share of episodes at `good` or more, and where it comes from."""
    from worldmodels.tools.results import summary_cells

    seeds = f" ({_seed_range(record)})" if record.get("seeds") else ""
    src = source if source.startswith("`") or " " in source else f"`{source}`"
    cells = summary_cells(record["scores"], good)
    return f"| {label} | {len(record['scores'])}{seeds} | {record.get('renderer', '-')} | {cells} | {src} |"


def _seed_range(record: dict) -> str:
    """'<range> range, seeds A .. B' (seeding.SEED_RANGES), from a result's first and last seed."""
    from worldmodels.io.seeding import seed_range

    seeds = record.get("seeds") or ["?", "?"]
    try:
        name = seed_range(int(seeds[0]), int(seeds[-1]) - int(seeds[0]) + 1) + " range, "
    except (TypeError, ValueError):
        name = ""
    return f"{name}seeds {seeds[0]} .. {seeds[-1]}"


def model_card(data_dir, out, v_cfg, c_cfg, ev, timings, random, command, machine, history=None, scored=()) -> str:
    """MODEL_CARD.md: how the agent was made (command, stages' wall times) and its scores: the results
    files given (`scored`, final range first), stage 5's own held-out score and the paper's."""
    env = c_cfg["env"]
    good = get_spec(env).good_score
    good_label = f"episodes >= {good:.0f}" if good is not None else "-"
    order = {"final": 0, "development": 1}
    scored = sorted(scored, key=lambda r: (r.get("policy") != "agent", order.get(r.get("seed_range"), 2)))
    mine = [r for r in scored if r.get("policy") == "agent"]
    randoms = [r for r in scored if r.get("policy") == "random"]
    ev_real = {"scores": ev["real"]["scores"], "seeds": ev.get("seeds"), "renderer": recorded_renderer(ev, c_cfg)}
    per_stage: dict[str, float] = {}
    for t in timings:
        per_stage[t["stage"]] = per_stage.get(t["stage"], 0.0) + t["seconds"]
    lines = [
        f"# World Models agent: {env}, {c_cfg.get('preset')} preset",
        "",
        "## How it was made",
        "",
        f"- Command: `{command}` (preset `{c_cfg.get('preset')}`, seed {c_cfg.get('seed')}), from the data "
        f"directory `{data_dir}`; exported with `python -m worldmodels.export_pretrained`.",
        f"- V: {v_cfg.get('kind', 'vae')}, z = {v_cfg['z_size']}, {v_cfg.get('epochs')} epochs "
        f"(last held-out r_loss {v_cfg.get('final', {}).get('heldout_r_loss', float('nan')):.1f}).",
        f"- C: linear on [{c_cfg['inputs']}], {c_cfg['n_params']} parameters, CMA-ES trained in "
        + ("the real env" if c_cfg["trained_in"] == "real" else f"the dream at tau {c_cfg['temperature']}")
        + _searches_note(c_cfg)
        + ".",
        "",
        "| stage | wall time (s) |",
        "|---|---|",
        *[f"| {k} | {v:.0f} |" for k, v in per_stage.items()],
        f"| total | {sum(per_stage.values()):.0f} |",
        "",
        f"Machine: {machine}",
        "",
        "## Scores",
        "",
        f"| policy | episodes (seeds) | renderer | mean ± std | standard error | {good_label} | source |",
        "|---|---|---|---|---|---|---|",
        *[_score_row(f"this agent, real env, {r['seed_range']} range", r, r["path"], good) for r in mine],
        *[_score_row(f"random policy, real env, {r['seed_range']} range", r, r["path"], good) for r in randoms],
        _score_row("this agent, real env (stage 5's held-out score)", ev_real, "`controller/eval.json`", good),
    ]
    if "dream" in ev:
        dream = {"scores": ev["dream"]["scores"], "renderer": "-", "seeds": None}
        lines.append(_score_row("this agent, in its dream", dream, "`controller/eval.json`", None))
    if random:
        random_row = {**random, "renderer": recorded_renderer(random)}
        source = "the run's `evaluate_random.json`"
        lines.append(_score_row("random policy, real env (stage 5's seeds)", random_row, source, good))
    lines += [
        f"| paper | 100 | - | {paper.SUMMARY.get(env, '-')} | | | `worldmodels/paper.py` |",
        "",
        "Every row but the paper's comes from the file named in it. The final range (from 4x10^9) scores an "
        "agent once, when it ships; the development range (from 2x10^9) is where every choice was judged "
        "(`worldmodels/io/seeding.py`).",
        "",
        "The fast renderer draws the stock env's pixels (a test compares frames and rewards). Check it yourself",
        "on development-range episodes it never trained on (env seeds S .. S+N-1, the stock environment unless",
        "--fast-env; the final range, `--seed-range final`, is kept for scoring an agent about to ship, once):",
        "",
        "```bash",
        f"python -m worldmodels.evaluate --env {env} --data-dir {_shown(out)} --episodes 100 --seed-offset 3000000000",
        "```",
        "",
        "Learning curve: `controller/generations.csv` and `controller/cmaes.png`.",
        "",
    ]
    if history:
        lines += ["## Training history (iterative rounds)", "", history.replace("# Iterative training", "").strip(), ""]
    return "\n".join(lines)


def build_parser():
    from worldmodels.cli import build_parser as build_cli_parser

    def extra(p):
        p.add_argument("--out", type=Path, required=True, help="the folder to write, e.g. pretrained/carracing-laptop")
        p.add_argument("--command", default="make run", help="the command(s) that trained it, for the model card")
        p.add_argument(
            "--results",
            type=Path,
            nargs="*",
            default=[],
            help="results files of `python -m worldmodels.evaluate` for the card's score table: this agent's "
            "(its fingerprints are checked) and the random policy's, e.g. on the final range",
        )
        p.add_argument(
            "--machine", default="2 CPU cores, no GPU (the project's development machine).", help="where it trained"
        )

    return build_cli_parser(
        __doc__, run_flags=("env", "preset", "data_dir"), extra=extra, prog="worldmodels export-pretrained"
    )


def _shown(path: Path) -> str:
    """`path` as the card's reader types it from the repository root: relative to the working
    directory when inside it (an absolute --out would otherwise print this machine's path)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _searches_note(c_cfg: dict) -> str:
    """How C was chosen among several searches (stage 5's --searches), for the card's C line."""
    cfg = c_cfg.get("config", {})
    n = cfg.get("searches", 1)
    if n <= 1:
        return ""
    where = "real" if c_cfg["trained_in"] == "real" else "dream"
    if cfg.get("combine") == "mean":
        return f"; the mean of {n} searches' controllers (seeds {c_cfg['seed'] * n} .. {c_cfg['seed'] * n + n - 1})"
    return (
        f"; the best of {n} searches (seeds {c_cfg['seed'] * n} .. {c_cfg['seed'] * n + n - 1}) on "
        f"{cfg.get('select_episodes')} held-out {where} episodes, search seed {c_cfg.get('search_seed')} "
        "(`controller/selection.json`)"
    )


def main(argv: list[str] | None = None) -> int:
    from worldmodels.cli import parse_tool, report_errors

    p = build_parser()
    run, a = parse_tool(p, argv)

    def body():
        out = export(run.data_dir, a.out, a.command, a.machine, a.results)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        print(f"wrote {out} ({size / 1e6:.1f} MB)")

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
