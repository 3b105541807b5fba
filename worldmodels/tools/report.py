"""data/<env>/report.md: settings, wall times, key metrics, plots and the score beside the paper's
and a random policy's. Refreshed after every stage (and by `python -m worldmodels.report DIR`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from worldmodels.io.artifacts import atomic_path, write_json

TIMINGS = "timings.json"
PAPER = {
    "carracing": "906 ± 21 (full world model, 100 random tracks)",
    "doom": "1092 ± 556 (dream-trained at tau 1.15, 100 episodes); random policy 210 ± 108",
}


def record_timing(data_dir: Path, stage: str, seconds: float) -> None:
    """Append one invocation's wall time to timings.json (a resumed stage has several)."""
    path = Path(data_dir) / TIMINGS
    rows = json.loads(path.read_text()) if path.exists() else []
    rows.append({"stage": stage, "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
    write_json(path, rows)


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_report(data_dir: Path) -> Path:
    """Write report.md from whatever artifacts exist in data_dir; returns its path."""
    d = Path(data_dir)
    manifest = _load(d / "rollouts" / "manifest.json")
    env = (manifest or {}).get("env") or next(
        (c["env"] for c in (_load(d / p / "config.json") for p in ("vision", "memory", "controller")) if c), "?"
    )
    lines = [
        f"# World Models run: {env}",
        "",
        f"Data directory `{d}`; refreshed {time.strftime('%Y-%m-%d %H:%M:%S')}.",
        "",
    ]
    timings = _load(d / TIMINGS) or []
    if timings:
        lines += ["## Wall time per stage", "", "| stage | runs | seconds |", "|---|---|---|"]
        per: dict[str, list[float]] = {}
        for t in timings:
            per.setdefault(t["stage"], []).append(t["seconds"])
        for stage, secs in per.items():
            lines.append(f"| {stage} | {len(secs)} | {sum(secs):.0f} |")
        lines.append(f"| total | | {sum(sum(s) for s in per.values()):.0f} |")
        lines.append("")
    if manifest:
        n = len(list((d / "rollouts").glob("*.npz")))
        lines += [
            "## Stage 1: rollouts",
            "",
            f"{n} episodes on disk; settings: `{json.dumps(manifest['collect'])}`",
            "",
        ]
    vision = _load(d / "vision" / "config.json")
    if vision:
        lines += [
            "## Stage 2: V",
            "",
            f"{vision['kind']}, z = {vision['z_size']}, {vision['epochs']} epochs, training {vision['wall_s']:.0f} s.",
            "",
        ]
        lines += ["Last epoch: " + ", ".join(f"{k} {_fmt(v)}" for k, v in vision.get("final", {}).items()), ""]
        if (d / "vision" / "reconstructions.png").exists():
            lines += ["![held-out frames (top) and V's reconstructions (bottom)](vision/reconstructions.png)", ""]
    memory = _load(d / "memory" / "config.json")
    if memory:
        lines += [
            "## Stage 4: M",
            "",
            f"MDN-RNN, LSTM {memory['rnn_size']}, {memory['num_mixtures']} mixtures, "
            f"{memory['steps']} steps, training {memory['wall_s']:.0f} s.",
            "",
        ]
        lines += ["Last checkpoint: " + ", ".join(f"{k} {_fmt(v)}" for k, v in memory.get("final", {}).items()), ""]
        if (d / "memory" / "predictions.png").exists():
            lines += [
                "![real frames (top) and M's open-loop predictions decoded by V (bottom)](memory/predictions.png)",
                "",
            ]
    controller = _load(d / "controller" / "config.json")
    if controller:
        lines += [
            "## Stage 5: C",
            "",
            f"Linear controller on [{controller['inputs']}] ({controller['n_params']} "
            f"parameters), trained in the {controller.get('trained_in', 'real')} env, {controller['generation']} "
            f"CMA-ES generations, {controller['wall_s']:.0f} s; chosen by {controller.get('selected_by')}.",
            "",
        ]
        if (d / "controller" / "cmaes.png").exists():
            lines += ["![CMA-ES](controller/cmaes.png)", ""]
    ev = _load(d / "controller" / "eval.json")
    rnd = _load(d / "evaluate_random.json")
    if ev or rnd:
        lines += ["## Score", "", "| policy | episodes | mean ± std |", "|---|---|---|"]
        if ev:
            lines.append(
                f"| this agent (real env) | {ev['episodes']} | {ev['real']['mean']:.1f} ± {ev['real']['std']:.1f} |"
            )
            if "dream" in ev:
                lines.append(
                    f"| this agent (in the dream, tau {ev.get('temperature')}) | {ev['episodes']} | "
                    f"{ev['dream']['mean']:.1f} ± {ev['dream']['std']:.1f} |"
                )
        if rnd:
            lines.append(
                f"| random policy (same held-out seeds) | {rnd['episodes']} | {rnd['mean']:.1f} ± {rnd['std']:.1f} |"
            )
        if env in PAPER:
            lines.append(f"| paper | 100 | {PAPER[env]} |")
        lines.append("")
    path = d / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    from worldmodels.cli import build_parser, parse_tool

    def extra(p):
        p.add_argument("directory", nargs="?", type=Path, help="the data directory (same as --data-dir)")

    p = build_parser(__doc__, run_flags=("env", "preset", "data_dir"), extra=extra, prog="worldmodels report")
    run, a = parse_tool(p, argv)
    root = a.directory or run.data_dir
    if not root.is_dir():
        p.error(f"{root} is not a directory")
    print(f"wrote {write_report(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
