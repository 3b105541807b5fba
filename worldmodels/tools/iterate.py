"""Iterative training (paper, section 5, "Iterative Training Procedure"), for worlds a random policy
only sees the start of:

  1. initialise M and C (round 0: the preset's exploration policy stands in for C);
  2. roll out in the real env with C, plus exploration noise, and save the episodes;
  3. train M on everything so far (optionally predicting the next action too) and train C inside M
     (or in the real env);
  4. repeat from 2.

Optionally C's training reward carries a curiosity bonus, M's negative log-likelihood of each
transition (`--curiosity W`): where M predicts badly the agent has found something new.

Example:  python -m worldmodels.iterate --env doom --preset laptop --rounds 3
Writes:   <data-dir>/rounds/<k>/ per round, a complete data directory (rollouts/ holds this round's
          episodes and links to the earlier rounds'; vision/ is round 0's unless --retrain-vision),
          round.json per finished round, and data/<env>/rounds/rounds.csv and rounds.md.

Killing it and rerunning the same command resumes: finished rounds are skipped, and inside a round
finished stages are skipped (stages.json) and the interrupted one resumes from its own checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from worldmodels.cli import build_parser as build_cli_parser
from worldmodels.cli import parse_tool, report_errors, require
from worldmodels.config import Run, make_stage_config
from worldmodels.io.artifacts import StageError, atomic_path, read_json, write_json

log = logging.getLogger(__name__)

STAGES = ("collect", "vision", "encode", "memory", "controller")


def _read_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise StageError(f"{path} is not valid JSON ({e}); delete it and rerun to redo that round's stages") from e


def round_seed(seed: int, k: int) -> int:
    """Round k's seed: its episodes get their own file names and env seeds."""
    return seed * 1000 + k


def _relative_link(link: Path, target: Path) -> None:
    """Make `link` a symlink to the relative path `target`, atomically; an existing link is kept."""
    if link.exists():
        return
    tmp = link.parent / f".tmp{os.getpid()}-{link.name}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def _link_earlier_rollouts(root: Path, k: int, seed: int) -> None:
    """Make round k's rollouts/ also hold (as relative links) every earlier round's own episodes."""
    dst = root / str(k) / "rollouts"
    dst.mkdir(parents=True, exist_ok=True)
    for j in range(k):
        for f in sorted((root / str(j) / "rollouts").glob(f"s{round_seed(seed, j)}_e*.npz")):
            _relative_link(dst / f.name, Path("..") / ".." / str(j) / "rollouts" / f.name)


def _link_earlier_encodings(root: Path, k: int) -> None:
    """Let round k's stage 3 reuse round k-1's per-episode encodings (relative links into the
    earlier round's cache). The cache is keyed by V's fingerprint, so links made under another V
    are simply not used."""
    prev = root / str(k - 1) / "series" / "parts"
    if k == 0 or not prev.is_dir():
        return
    for fp_dir in prev.iterdir():
        if not fp_dir.is_dir():
            continue
        dst = root / str(k) / "series" / "parts" / fp_dir.name
        dst.mkdir(parents=True, exist_ok=True)
        for f in fp_dir.glob("*.npz"):
            _relative_link(dst / f.name, Path("../../../..") / str(k - 1) / "series" / "parts" / fp_dir.name / f.name)


def _episode_steps(rollouts: Path, seed: int) -> int:
    from worldmodels.io.data import inspect_rollout

    return sum(inspect_rollout(f) for f in rollouts.glob(f"s{seed}_e*.npz"))


def round_configs(run: Run, a, root: Path, k: int) -> dict:
    """The five stage configs of round k: the preset's, with the iterate flags applied."""
    collect = make_stage_config("collect", run.env, run.preset)
    if a.episodes:
        collect = replace(collect, episodes=a.episodes)
    if k > 0:
        collect = replace(collect, policy="controller", agent_dir=str(root / str(k - 1)), explore=a.explore)
    controller = make_stage_config("controller", run.env, run.preset)
    controller = replace(controller, train_in=a.train_in or controller.train_in, curiosity=a.curiosity)
    if a.generations:
        controller = replace(controller, generations=a.generations)
    memory = replace(make_stage_config("memory", run.env, run.preset), predict_action=a.predict_action)
    if a.memory_steps:
        memory = replace(memory, steps=a.memory_steps)
    return {
        "collect": collect,
        "vision": make_stage_config("vision", run.env, run.preset),
        "encode": make_stage_config("encode", run.env, run.preset),
        "memory": memory,
        "controller": controller,
    }


def round_steps(run: Run, a, root: Path, k: int, cfgs: dict) -> dict:
    """Stage name -> a function that runs (or resumes) that stage of round k in its directory."""
    from worldmodels.stages.collect import generate_data
    from worldmodels.stages.encode import encode_rollouts
    from worldmodels.stages.train_controller import train_controller
    from worldmodels.stages.train_rnn import train_rnn
    from worldmodels.stages.train_vae import train_vae

    rd = root / str(k)
    rrun = dataclasses.replace(run, data_dir=rd, seed=round_seed(run.seed, k))

    def vision_stage():
        if k == 0 or a.retrain_vision:
            return train_vae(rrun, cfgs["vision"])
        link = rd / "vision"
        if not link.exists():
            link.symlink_to(Path("..") / "0" / "vision")
        return link

    def encode_stage():
        if not a.retrain_vision:
            _link_earlier_encodings(root, k)
        return encode_rollouts(rrun, cfgs["encode"])

    return {
        "collect": lambda: (generate_data(rrun, cfgs["collect"]), _link_earlier_rollouts(root, k, run.seed)),
        "vision": vision_stage,
        "encode": encode_stage,
        "memory": lambda: train_rnn(rrun, cfgs["memory"]),
        "controller": lambda: train_controller(rrun, cfgs["controller"]),
    }


def run_round(run: Run, a, root: Path, k: int) -> dict:
    """Run (or resume) round k; returns its summary (also written to round.json)."""
    rd = root / str(k)
    rd.mkdir(parents=True, exist_ok=True)
    seed = round_seed(run.seed, k)
    done_path = rd / "stages.json"
    progress = _read_state(done_path) if done_path.exists() else {"seconds": {}}
    cfgs = round_configs(run, a, root, k)
    steps = round_steps(run, a, root, k, cfgs)
    for name in STAGES:
        if name in progress["seconds"]:
            continue
        log.info("round %d: %s", k, name)
        t0 = time.time()
        steps[name]()
        progress["seconds"][name] = time.time() - t0
        write_json(done_path, progress)

    collect, memory, controller = cfgs["collect"], cfgs["memory"], cfgs["controller"]
    ev = read_json(rd / controller.name / "eval.json", "controller")
    summary = {
        "round": k,
        "seed": seed,
        "collect_policy": collect.policy,
        "episodes_collected": collect.episodes,
        "real_env_steps_collected": _episode_steps(rd / "rollouts", seed),
        "controller_trained_in": controller.train_in,
        "curiosity": controller.curiosity,
        "predict_action": memory.predict_action,
        "real_mean": ev["real"]["mean"],
        "real_std": ev["real"]["std"],
        "real_episodes": len(ev["real"]["scores"]),
        "dream_mean": ev.get("dream", {}).get("mean"),
        "seconds": progress["seconds"],
    }
    write_json(rd / "round.json", summary)
    return summary


def write_table(root: Path, rows: list[dict]) -> None:
    cum = 0
    lines = [
        "# Iterative training",
        "",
        "| round | collected with | real env steps (round) | real env steps (total) | real score | dream score |",
        "|---|---|---|---|---|---|",
    ]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["round", "collect_policy", "env_steps", "env_steps_total", "real_mean", "real_std", "dream_mean"])
    for r in rows:
        cum += r["real_env_steps_collected"]
        dream = f"{r['dream_mean']:.1f}" if r["dream_mean"] is not None else "-"
        lines.append(
            f"| {r['round']} | {r['collect_policy']} | {r['real_env_steps_collected']} | {cum} | "
            f"{r['real_mean']:.1f} ± {r['real_std']:.1f} ({r['real_episodes']} episodes) | {dream} |"
        )
        w.writerow(
            [
                r["round"],
                r["collect_policy"],
                r["real_env_steps_collected"],
                cum,
                r["real_mean"],
                r["real_std"],
                r["dream_mean"],
            ]
        )
    lines += [
        "",
        "Real env steps count the collected episodes only; a controller trained in the real env "
        "(`--train-in real`) uses more, and every round's evaluation episodes are not counted.",
        "",
    ]
    with atomic_path(root / "rounds.csv") as tmp:
        tmp.write_text(buf.getvalue())
    with atomic_path(root / "rounds.md") as tmp:
        tmp.write_text("\n".join(lines))


def build_parser():
    def extra(p):
        p.add_argument("--rounds", type=int, default=3, help="number of rounds K")
        p.add_argument("--episodes", type=int, default=0, help="episodes collected per round (0: the preset's)")
        p.add_argument(
            "--explore", type=float, default=0.1, help="rounds >= 1: probability of a random action per step"
        )
        p.add_argument("--curiosity", type=float, default=0.0, help="weight of M's NLL bonus in C's training reward")
        p.add_argument("--predict-action", action="store_true", help="M also predicts the next action")
        p.add_argument("--train-in", choices=("real", "dream"), default=None, help="where C trains (default: preset)")
        p.add_argument("--generations", type=int, default=0, help="CMA-ES generations per round (0: the preset's)")
        p.add_argument("--memory-steps", type=int, default=0, help="M's training steps per round (0: the preset's)")
        p.add_argument("--retrain-vision", action="store_true", help="retrain V every round on all data so far")

    return build_cli_parser(__doc__, env_default="doom", extra=extra, prog="worldmodels iterate")


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    run, a = parse_tool(p, argv)
    require(p, "--rounds", a.rounds, "positive")
    require(p, "--episodes", a.episodes, ">= 0")
    require(p, "--explore", a.explore, "probability")
    require(p, "--curiosity", a.curiosity, ">= 0")
    if a.generations:
        require(p, "--generations", a.generations, "positive")
    require(p, "--memory-steps", a.memory_steps, ">= 0")
    root = run.data_dir / "rounds"
    rows = []

    def body():
        for k in range(a.rounds):
            done = root / str(k) / "round.json"
            summary = _read_state(done) if done.exists() else run_round(run, a, root, k)
            rows.append(summary)
            log.info(
                "round %d: %d real env steps collected, real score %.1f +- %.1f",
                k,
                summary["real_env_steps_collected"],
                summary["real_mean"],
                summary["real_std"],
            )
            write_table(root, rows)
        print((root / "rounds.md").read_text())

    return report_errors(body)


if __name__ == "__main__":
    sys.exit(main())
