"""data/<env>/report.md: settings, wall times, key metrics, plots and the score beside the paper's
and a random policy's. Refreshed after every stage (and by `python -m worldmodels.report DIR`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from worldmodels import paper
from worldmodels.io.artifacts import atomic_path, write_json

TIMINGS = "timings.json"


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


def _timings_section(d: Path) -> list[str]:
    timings = _load(d / TIMINGS) or []
    if not timings:
        return []
    lines = ["## Wall time per stage", "", "| stage | runs | seconds |", "|---|---|---|"]
    per: dict[str, list[float]] = {}
    for t in timings:
        per.setdefault(t["stage"], []).append(t["seconds"])
    for stage, secs in per.items():
        lines.append(f"| {stage} | {len(secs)} | {sum(secs):.0f} |")
    lines.append(f"| total | | {sum(sum(s) for s in per.values()):.0f} |")
    return lines + [""]


def _rollouts_section(d: Path, manifest: dict | None) -> list[str]:
    if not manifest:
        return []
    n = len(list((d / "rollouts").glob("*.npz")))
    return ["## Stage 1: rollouts", "", f"{n} episodes on disk; settings: `{json.dumps(manifest['collect'])}`", ""]


def _vision_section(d: Path) -> list[str]:
    vision = _load(d / "vision" / "config.json")
    if not vision:
        return []
    lines = [
        "## Stage 2: V",
        "",
        f"{vision['kind']}, z = {vision['z_size']}, {vision['epochs']} epochs, training {vision['wall_s']:.0f} s.",
        "",
        "Last epoch: " + ", ".join(f"{k} {_fmt(v)}" for k, v in vision.get("final", {}).items()),
        "",
    ]
    if (d / "vision" / "reconstructions.png").exists():
        lines += ["![held-out frames (top) and V's reconstructions (bottom)](vision/reconstructions.png)", ""]
    return lines


def _memory_section(d: Path) -> list[str]:
    memory = _load(d / "memory" / "config.json")
    if not memory:
        return []
    lines = [
        "## Stage 4: M",
        "",
        f"MDN-RNN, LSTM {memory['rnn_size']}, {memory['num_mixtures']} mixtures, "
        f"{memory['steps']} steps, training {memory['wall_s']:.0f} s.",
        "",
        "Last checkpoint: " + ", ".join(f"{k} {_fmt(v)}" for k, v in memory.get("final", {}).items()),
        "",
    ]
    if (d / "memory" / "predictions.png").exists():
        lines += [
            "![real frames (top) and M's open-loop predictions decoded by V (bottom)](memory/predictions.png)",
            "",
        ]
    return lines


def _controller_section(d: Path) -> list[str]:
    controller = _load(d / "controller" / "config.json")
    if not controller:
        return []
    lines = [
        "## Stage 5: C",
        "",
        f"Linear controller on [{controller['inputs']}] ({controller['n_params']} "
        f"parameters), trained in the {controller.get('trained_in', 'real')} env, {controller['generation']} "
        f"CMA-ES generations, {controller['wall_s']:.0f} s; chosen by {controller.get('selected_by')}.",
        "",
    ]
    if (d / "controller" / "cmaes.png").exists():
        lines += ["![CMA-ES](controller/cmaes.png)", ""]
    return lines


def _score_section(d: Path, env: str) -> list[str]:
    ev = _load(d / "controller" / "eval.json")
    rnd = _load(d / "evaluate_random.json")
    if not (ev or rnd):
        return []
    from worldmodels.envs.registry import recorded_renderer

    lines = ["## Score", "", "| policy | episodes | renderer | mean ± std |", "|---|---|---|---|"]
    if ev:
        renderer = recorded_renderer(ev, _load(d / "controller" / "config.json"))
        real = ev["real"]
        lines.append(
            f"| this agent (real env) | {ev['episodes']} | {renderer} | {real['mean']:.1f} ± {real['std']:.1f} |"
        )
        if "dream" in ev:
            dream = ev["dream"]
            lines.append(
                f"| this agent (in the dream, tau {ev.get('temperature')}) | {ev['episodes']} | - | "
                f"{dream['mean']:.1f} ± {dream['std']:.1f} |"
            )
    if rnd:
        renderer = recorded_renderer(rnd)
        lines.append(
            f"| random policy (same held-out seeds) | {rnd['episodes']} | {renderer} | "
            f"{rnd['mean']:.1f} ± {rnd['std']:.1f} |"
        )
    if env in paper.SUMMARY:
        lines.append(f"| paper | 100 | - | {paper.SUMMARY[env]} |")
    return lines + [""]


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
    lines += _timings_section(d) + _rollouts_section(d, manifest) + _vision_section(d)
    lines += _memory_section(d) + _controller_section(d) + _score_section(d, env)
    path = d / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def build_parser():
    from worldmodels.cli import add_directory_argument
    from worldmodels.cli import build_parser as build_cli_parser

    return build_cli_parser(
        __doc__, run_flags=("env", "preset", "data_dir"), extra=add_directory_argument, prog="worldmodels report"
    )


def main(argv: list[str] | None = None) -> int:
    from worldmodels.cli import parse_directory_tool

    root = parse_directory_tool(build_parser(), argv)
    print(f"wrote {write_report(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
