"""The paper preset, smoke-tested on CPU before anyone rents a GPU for it (issue 20): all five stages
for both envs with `--preset paper` and size overrides only (a few episodes, a few steps per stage,
one generation), so every paper-only path runs: z 64 (doom), M with 512 units (doom), sequences of
999 (CarRacing) and 500 (doom) steps, the population of 64 x 16 episodes, 2100-step doom episodes."""

import json

import pytest

pytestmark = pytest.mark.slow  # runs the stage scripts, the game engines and TensorFlow

# Size overrides only: everything else is the paper preset's.
SIZES = {
    "01_generate_data.py": ["--episodes", "3"],
    "02_train_vae.py": ["--epochs", "1", "--heldout-episodes", "1", "--max-frames-per-epoch", "64"],
    "03_generate_rnn_data.py": [],
    "04_train_rnn.py": ["--steps", "2"],
    "05_train_controller.py": ["--generations", "1", "--eval-episodes", "2", "--val-episodes", "2"],
}
PER_ENV = {  # CarRacing's real-env episodes are capped short; doom's dream and game run full length
    "carracing": {"01_generate_data.py": ["--max-steps", "40"], "05_train_controller.py": ["--max-steps", "3"]},
    "doom": {},
}
PAPER = {  # what the paper preset must have used: (z, LSTM units, sequence length, episode cap)
    "carracing": (32, 256, 999, 1000),
    "doom": (64, 512, 500, 2100),
}


@pytest.mark.parametrize("env", ["carracing", "doom"])
def test_paper_preset_runs_every_stage(scripts, tmp_path, env):
    data = tmp_path / env
    for s in scripts.names:
        scripts.run(s, data, "--env", env, "--preset", "paper", *SIZES[s], *PER_ENV[env].get(s, []))
    z, units, seq_len, cap = PAPER[env]
    vision = json.loads((data / "vision" / "config.json").read_text())
    memory = json.loads((data / "memory" / "config.json").read_text())
    controller = json.loads((data / "controller" / "config.json").read_text())
    assert vision["preset"] == memory["preset"] == controller["preset"] == "paper"
    assert vision["z_size"] == memory["z_size"] == controller["z_size"] == z
    assert memory["rnn_size"] == controller["rnn_size"] == units
    assert memory["config"]["seq_len"] == seq_len and memory["config"]["batch_size"] == 100
    c = controller["config"]
    assert (c["population"], c["trials"]) == (64, 16)
    assert c["eval_max_steps"] == cap
    if env == "doom":
        assert c["max_steps"] == cap and controller["trained_in"] == "dream" and controller["inputs"] == "zch"
    ev = json.loads((data / "controller" / "eval.json").read_text())
    assert len(ev["real"]["scores"]) == 2
    rows = (data / "controller" / "generations.csv").read_text().strip().splitlines()
    assert len(rows) == 2  # header + the one generation of 64 candidates


def test_the_gpu_check_runs_every_phase(scripts, tmp_path):
    """bench/gpu_check.py (what bench/gpu_check.sh runs on a GPU box) runs each phase at the paper's
    shapes through the stages' models and loaders; here on the CPU, for a moment each."""
    import os
    import sys

    out = tmp_path / "gpu.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "bench/gpu_check.py", "--seconds", "0.2", "--allow-cpu", "--out", str(out)]
    p = scripts.run_cmd(cmd, env)
    assert p.returncode == 0, p.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(r["phase"].split()[0], r["mixed_precision"]) for r in rows] == [
        ("V", False),
        ("M", False),
        ("M", False),
        ("V", True),
        ("M", True),
        ("M", True),
    ]
    assert all(r["rate"] > 0 and r["steps"] >= 1 for r in rows)
    assert "sequence 999" in rows[1]["phase"] and "LSTM 512" in rows[2]["phase"]
    # without a GPU and without --allow-cpu it measures nothing, and says so
    p = scripts.run_cmd([sys.executable, "bench/gpu_check.py", "--require-gpu"], env)
    assert p.returncode == 2 and "no GPU visible" in p.stdout
