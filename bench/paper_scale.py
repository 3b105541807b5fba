#!/usr/bin/env python
"""Bench (issue 20): peak memory and disk per stage at the paper preset, projected from a measured
run at the paper's shapes.

Runs all five stages per env with `--preset paper` and size overrides only (as
tests/test_paper_preset.py does: 3 episodes, one epoch of 64 frames, 2 M steps, one generation),
each stage in a fresh process that reports its own peak RSS and its workers'. What does not grow
with the data (the models, the batches, one episode per worker) is measured at the paper's shapes;
what does is projected from measured per-step figures:

- rollouts/: 10,000 episodes x the mean episode length x bytes per step on disk (CarRacing:
  1000-step episodes, bytes per step from data/carracing/rollouts when present, the laptop
  preset's real frames; Doom: the random policy's mean survival, from
  results/doom-random-final-4e9-300.json, bytes per step from data/doom/rollouts when present);
- series/: the same steps x series.h5's bytes per step (its datasets' dtypes: it is uncompressed);
- stage 2's peak RSS: the measured one plus its shuffle buffer when full (10,000 frames) and the
  episodes its loader reads ahead on an 8-core box (the smoke run never fills either);
- stages 3 and 4 stream an episode / a batch at a time (bench/memory_rss.py: 10x the data within
  1.3x the memory), so their measured peak is the projection.

Usage: python bench/paper_scale.py [--out FILE.json]
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from memory_rss import ROOT, peak_rss  # bench/ is on the path of a script run from it

from worldmodels.config import make_stage_config

SIZES = {  # the same size overrides as tests/test_paper_preset.py
    "01_generate_data.py": ["--episodes", "3"],
    "02_train_vae.py": ["--epochs", "1", "--heldout-episodes", "1", "--max-frames-per-epoch", "64"],
    "03_generate_rnn_data.py": [],
    "04_train_rnn.py": ["--steps", "2"],
    "05_train_controller.py": ["--generations", "1", "--eval-episodes", "2", "--val-episodes", "2"],
}
PER_ENV = {"carracing": {"01_generate_data.py": ["--max-steps", "40"], "05_train_controller.py": ["--max-steps", "3"]}}
ARTIFACTS = {"01_generate_data.py": "rollouts", "02_train_vae.py": "vision", "03_generate_rnn_data.py": "series"}
ARTIFACTS |= {"04_train_rnn.py": "memory", "05_train_controller.py": "controller"}
FRAME_BYTES = 64 * 64 * 3
READ_AHEAD_EPISODES = 8  # 2 x 4 loader threads on a box with 8 or more cores


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def rollout_bytes_per_step(rollouts: Path) -> tuple[float, str]:
    files = sorted(rollouts.glob("*.npz"))
    steps = 0
    for f in files:
        with np.load(f) as z:
            steps += len(z["reward"])
    return dir_bytes(rollouts) / max(steps, 1), str(
        rollouts.relative_to(ROOT) if rollouts.is_relative_to(ROOT) else rollouts
    )


def mean_episode_steps(env: str) -> tuple[float, str]:
    if env == "carracing":
        return 1000.0, "the 1000-step cap (the exploration policy drives whole episodes)"
    path = ROOT / "results" / "doom-random-final-4e9-300.json"
    return float(json.loads(path.read_text())["mean"]), "the random policy's mean survival, " + str(
        path.relative_to(ROOT)
    )


def measure(env: str, root: Path) -> dict:
    data = root / env
    stages = {}
    for script, extra in SIZES.items():
        own, children = peak_rss(
            script, data, ["--env", env, *extra, *PER_ENV.get(env, {}).get(script, [])], "paper", 2
        )
        stages[script] = {
            "peak_rss_mb": own,
            "workers_peak_rss_mb": children,
            "disk_bytes": dir_bytes(data / ARTIFACTS[script]),
        }
        print(
            f"  {env} {script:26s} peak RSS {own:6.0f} MB (workers {children:5.0f} MB), {ARTIFACTS[script]}/ "
            f"{stages[script]['disk_bytes'] / 1e6:7.1f} MB",
            flush=True,
        )
    import h5py

    with h5py.File(data / "series" / "series.h5", "r") as f:  # uncompressed: bytes per step are the dtypes'
        per_step = sum(f[k].dtype.itemsize * int(np.prod(f[k].shape[1:])) for k in f if k != "episode_starts")
    run_steps = 0
    for f in sorted((data / "rollouts").glob("*.npz")):
        with np.load(f) as z:
            run_steps += len(z["reward"])
    return {"stages": stages, "series_bytes_per_step": per_step, "smoke_steps": run_steps}


def project(env: str, m: dict) -> dict:
    collect = make_stage_config("collect", env, "paper")
    vision = make_stage_config("vision", env, "paper")
    local = ROOT / "data" / env / "rollouts"
    if local.is_dir() and any(local.glob("*.npz")):
        per_step, source = rollout_bytes_per_step(local)
    else:
        per_step = m["stages"]["01_generate_data.py"]["disk_bytes"] / m["smoke_steps"]
        source = "the smoke run's own rollouts (the first 40 steps of each track only)"
    length, length_source = mean_episode_steps(env)
    steps = collect.episodes * length
    s = m["stages"]
    loader = (vision.shuffle_buffer + READ_AHEAD_EPISODES * min(length, collect.max_steps)) * FRAME_BYTES / 2**20
    return {
        "episodes": collect.episodes,
        "mean_episode_steps": length,
        "mean_episode_steps_source": length_source,
        "rollout_bytes_per_step": per_step,
        "rollout_bytes_per_step_source": source,
        "disk_gb": {
            "rollouts": steps * per_step / 1e9,
            "series": steps * m["series_bytes_per_step"] / 1e9,
            "vision": s["02_train_vae.py"]["disk_bytes"] / 1e9,
            "memory": s["04_train_rnn.py"]["disk_bytes"] / 1e9,
            "controller": s["05_train_controller.py"]["disk_bytes"] / 1e9,
        },
        "peak_rss_mb": {
            "01 collect (each worker)": s["01_generate_data.py"]["workers_peak_rss_mb"],
            "01 collect (main)": s["01_generate_data.py"]["peak_rss_mb"],
            "02 vision": s["02_train_vae.py"]["peak_rss_mb"] + loader,
            "03 encode": s["03_generate_rnn_data.py"]["peak_rss_mb"],
            "04 memory": s["04_train_rnn.py"]["peak_rss_mb"],
            "05 controller (main)": s["05_train_controller.py"]["peak_rss_mb"],
            "05 controller (each worker)": s["05_train_controller.py"]["workers_peak_rss_mb"],
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    a = p.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for env in ("carracing", "doom"):
            print(f"{env}: the paper preset's five stages at its shapes (size overrides only)", flush=True)
            measured = measure(env, Path(d))
            out[env] = {"measured": measured, "paper": project(env, measured)}
            shutil.rmtree(Path(d) / env)
    for env, r in out.items():
        pr = r["paper"]
        disk = pr["disk_gb"]
        print(
            f"{env} at the paper preset: {pr['episodes']} episodes x {pr['mean_episode_steps']:.0f} steps "
            f"({pr['mean_episode_steps_source']}); rollouts {pr['rollout_bytes_per_step']:.0f} bytes/step "
            f"({pr['rollout_bytes_per_step_source']})"
        )
        print(
            "  disk: " + ", ".join(f"{k}/ {v:.2f} GB" for k, v in disk.items()) + f"; total {sum(disk.values()):.1f} GB"
        )
        print("  peak RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in pr["peak_rss_mb"].items()))
    if a.out:
        a.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
