"""Train a controller in the dream at several temperatures and score each in the real game
(the paper's Table 2: tau, virtual score, actual score).

Example:  python -m worldmodels.sweep_temperature --env doom --preset laptop --temperatures 0.1 0.5 1.0 1.15 1.3
Reads:    data/<env>/vision, memory, series (stages 1-4 done)
Writes:   data/<env>/controller_tau<T>/ per temperature (resumable like stage 5), and
          data/<env>/temperature_sweep.csv and temperature_sweep.md

Any stage-5 flag (--generations, --population, ...) applies to every temperature.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import sys

from worldmodels import paper
from worldmodels.cli import parse, run_stage
from worldmodels.io.artifacts import atomic_path


def sweep(args, cfg, temperatures: list[float]):
    """Run stage 5 in the dream per temperature; write the table. Returns the markdown path."""
    from worldmodels.io.artifacts import read_json
    from worldmodels.stages.train_controller import train_controller

    rows = []
    for tau in temperatures:
        tau_cfg = dataclasses.replace(cfg, train_in="dream", temperature=tau, name=f"controller_tau{tau:g}")
        out = train_controller(args, tau_cfg)
        ev = read_json(out / "eval.json", "controller", args)
        ref = paper.DOOM_TABLE2.get(round(tau, 2), (None, None)) if args.env == "doom" else (None, None)
        rows.append(
            {
                "temperature": tau,
                "dream_mean": ev["dream"]["mean"],
                "dream_std": ev["dream"]["std"],
                "real_mean": ev["real"]["mean"],
                "real_std": ev["real"]["std"],
                "episodes": ev["episodes"],
                "paper_dream": ref[0],
                "paper_real": ref[1],
            }
        )
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    with atomic_path(args.data_dir / "temperature_sweep.csv") as tmp:
        tmp.write_text(buf.getvalue())
    lines = [
        f"# Temperature sweep: {args.env}, preset {args.preset}, seed {args.seed}",
        "",
        f"Controller trained only in the dream; scores over {rows[0]['episodes']} held-out episodes.",
        "",
        "| temperature | dream score | real score | paper dream | paper real |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ref_cells = [
            f"{r['paper_dream']}" if r["paper_dream"] is not None else "",
            f"{r['paper_real']}" if r["paper_real"] is not None else "",
        ]
        lines.append(
            f"| {r['temperature']:g} | {r['dream_mean']:.0f} ± {r['dream_std']:.0f} | "
            f"{r['real_mean']:.0f} ± {r['real_std']:.0f} | {ref_cells[0]} | {ref_cells[1]} |"
        )
    md = args.data_dir / "temperature_sweep.md"
    with atomic_path(md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return md


def _extra(p) -> None:
    p.add_argument(
        "--temperatures",
        type=float,
        nargs="+",
        default=[0.1, 0.5, 1.0, 1.15, 1.3],
        help="temperatures to train at (default: the paper's 0.1 0.5 1.0 1.15 1.3)",
    )


def build_parser():
    from worldmodels.cli import build_parser as build_cli_parser

    return build_cli_parser(__doc__, "controller", extra=_extra, prog="worldmodels sweep-temperature")


def main(argv: list[str] | None = None) -> int:
    args, cfg, ns = parse("controller", __doc__, argv, _extra, prog="worldmodels sweep-temperature")
    for t in ns.temperatures:
        if t < 0:
            print(f"worldmodels sweep-temperature: error: --temperatures must be >= 0, got {t}", file=sys.stderr)
            return 2
    run_stage(lambda: sweep(args, cfg, ns.temperatures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
