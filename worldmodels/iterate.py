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
Writes:   data/<env>/rounds/<k>/ per round, a complete data directory (rollouts/ holds this round's
          episodes and links to the earlier rounds'; vision/ is round 0's unless --retrain-vision),
          round.json per finished round, and data/<env>/rounds/rounds.csv and rounds.md.

Killing it and rerunning the same command resumes: finished rounds are skipped, and inside a round
finished stages are skipped (stages.json) and the interrupted one resumes from its own checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from worldmodels.artifacts import StageError, atomic_path, read_json, write_json
from worldmodels.cli import RunArgs
from worldmodels.config import ENVS, PRESET_NAMES, make_stage_config

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
    from worldmodels.data import inspect_rollout

    return sum(inspect_rollout(f) for f in rollouts.glob(f"s{seed}_e*.npz"))


def run_round(a: argparse.Namespace, root: Path, k: int) -> dict:
    """Run (or resume) round k; returns its summary (also written to round.json)."""
    from worldmodels.stages.collect import generate_data
    from worldmodels.stages.encode import encode_rollouts
    from worldmodels.stages.train_controller import train_controller
    from worldmodels.stages.train_rnn import train_rnn
    from worldmodels.stages.train_vae import train_vae

    rd = root / str(k)
    rd.mkdir(parents=True, exist_ok=True)
    seed = round_seed(a.seed, k)
    args = RunArgs(a.env, a.preset, rd, seed, a.workers, a.ray_address)
    done_path = rd / "stages.json"
    progress = _read_state(done_path) if done_path.exists() else {"seconds": {}}

    collect = make_stage_config("collect", a.env, a.preset)
    if a.episodes:
        collect = replace(collect, episodes=a.episodes)
    if k > 0:
        collect = replace(collect, policy="controller", agent_dir=str(root / str(k - 1)), explore=a.explore)
    vision = make_stage_config("vision", a.env, a.preset)
    memory = replace(make_stage_config("memory", a.env, a.preset), predict_action=a.predict_action)
    controller = make_stage_config("controller", a.env, a.preset)
    controller = replace(controller, train_in=a.train_in or controller.train_in, curiosity=a.curiosity)
    if a.generations:
        controller = replace(controller, generations=a.generations)

    def vision_stage():
        if k == 0 or a.retrain_vision:
            return train_vae(args, vision)
        link = rd / "vision"
        if not link.exists():
            link.symlink_to(Path("..") / "0" / "vision")
        return link

    steps = {
        "collect": lambda: (generate_data(args, collect), _link_earlier_rollouts(root, k, a.seed)),
        "vision": vision_stage,
        "encode": lambda: (
            None if a.retrain_vision else _link_earlier_encodings(root, k),
            encode_rollouts(args, make_stage_config("encode", a.env, a.preset)),
        ),
        "memory": lambda: train_rnn(args, memory),
        "controller": lambda: train_controller(args, controller),
    }
    for name in STAGES:
        if name in progress["seconds"]:
            continue
        log.info("round %d: %s", k, name)
        t0 = time.time()
        steps[name]()
        progress["seconds"][name] = time.time() - t0
        write_json(done_path, progress)

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="doom", choices=ENVS)
    p.add_argument("--preset", default="laptop", choices=PRESET_NAMES)
    p.add_argument("--data-dir", type=Path, default=None, help="rounds go under DATA_DIR/rounds (default data/<env>)")
    p.add_argument("--rounds", type=int, default=3, help="number of rounds K")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"))
    p.add_argument("--episodes", type=int, default=0, help="episodes collected per round (0: the preset's)")
    p.add_argument("--explore", type=float, default=0.1, help="rounds >= 1: probability of a random action per step")
    p.add_argument("--curiosity", type=float, default=0.0, help="weight of M's NLL bonus in C's training reward")
    p.add_argument("--predict-action", action="store_true", help="M also predicts the next action")
    p.add_argument("--train-in", choices=("real", "dream"), default=None, help="where C trains (default: preset)")
    p.add_argument("--generations", type=int, default=0, help="CMA-ES generations per round (0: the preset's)")
    p.add_argument("--retrain-vision", action="store_true", help="retrain V every round on all data so far")
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.rounds <= 0 or a.workers <= 0 or a.episodes < 0 or not 0 <= a.explore <= 1 or a.curiosity < 0:
        p.error("--rounds and --workers must be positive, --episodes and --curiosity >= 0, --explore in [0, 1]")
    root = (a.data_dir or Path("data") / a.env) / "rounds"
    rows = []
    try:
        for k in range(a.rounds):
            done = root / str(k) / "round.json"
            summary = _read_state(done) if done.exists() else run_round(a, root, k)
            rows.append(summary)
            log.info(
                "round %d: %d real env steps collected, real score %.1f +- %.1f",
                k,
                summary["real_env_steps_collected"],
                summary["real_mean"],
                summary["real_std"],
            )
            write_table(root, rows)
    except StageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print((root / "rounds.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
