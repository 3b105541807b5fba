"""The five scripts, end to end, on the tiny preset, in a temporary data directory."""

import json
import math
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # runs the five stage scripts as subprocesses


@pytest.fixture(scope="module")
def pipeline(scripts, tmp_path_factory):
    data = tmp_path_factory.mktemp("data") / "carracing"
    for s in scripts.names:
        scripts.run(s, data)
    return data


def test_rollouts_follow_the_contract(pipeline):
    files = sorted((pipeline / "rollouts").glob("*.npz"))
    assert len(files) == 4
    for f in files:
        with np.load(f) as z:
            assert z["obs"].dtype == np.uint8 and z["obs"].shape[1:] == (64, 64, 3)
            T = len(z["obs"])
            assert z["action"].shape == (T, 3) and z["action"].dtype == np.float32
            assert z["reward"].shape == (T,) and z["reward"].dtype == np.float32
            assert z["terminated"].dtype == np.bool_ and z["truncated"].dtype == np.bool_
            assert (z["terminated"][-1] or z["truncated"][-1]) and not z["truncated"][:-1].any()


def test_vision_memory_controller_artifacts(pipeline):
    vision = json.loads((pipeline / "vision" / "config.json").read_text())
    assert vision["kind"] == "vae" and vision["z_size"] == 8 and vision["epochs"] == 2
    for f in ("vae.weights.h5", "encoder.npz", "metrics.csv", "reconstructions.png", "checkpoint.npz"):
        assert (pipeline / "vision" / f).exists(), f
    assert list((pipeline / "vision" / "tensorboard").iterdir())
    with h5py.File(pipeline / "series" / "series.h5", "r") as f:
        starts = f["episode_starts"][:]
        assert starts[0] == 0 and starts[-1] == len(f["mu"]) == 240 and len(starts) == 5
        assert f["mu"].shape == f["logvar"].shape == (240, 8)
        assert f.attrs["vision_fingerprint"] == vision["fingerprint"]
    memory = json.loads((pipeline / "memory" / "config.json").read_text())
    assert memory["inputs"]["vision"] == vision["fingerprint"] and memory["steps"] == 20
    controller = json.loads((pipeline / "controller" / "config.json").read_text())
    assert controller["n_params"] == (8 + 16) * 3 + 3 and controller["generation"] == 2
    gens = (pipeline / "controller" / "generations.csv").read_text().strip().splitlines()
    assert len(gens) == 3 and gens[0].startswith("generation,")


def test_eval_json_holds_finite_held_out_scores(pipeline):
    ev = json.loads((pipeline / "controller" / "eval.json").read_text())
    scores = ev["real"]["scores"]
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores)
    assert ev["real"]["mean"] == pytest.approx(np.mean(scores))
    assert ev["seeds"][0] >= 2 * 10**9  # held-out seeds are outside the training range


def test_rerun_resumes_instead_of_redoing(scripts, pipeline):
    before = {p: p.stat().st_mtime_ns for p in (pipeline / "rollouts").glob("*.npz")}
    p = scripts.run("01_generate_data.py", pipeline)
    assert "4 of 4 episodes on disk" in p.stderr
    assert before == {p: p.stat().st_mtime_ns for p in (pipeline / "rollouts").glob("*.npz")}
    state = (pipeline / "controller" / "es_state.pkl").read_bytes()
    p = scripts.run("05_train_controller.py", pipeline)
    assert (pipeline / "controller" / "es_state.pkl").read_bytes() == state  # no generation rerun
    # Asking for one more generation continues from the saved state.
    scripts.run("05_train_controller.py", pipeline, "--generations", "3")
    gens = (pipeline / "controller" / "generations.csv").read_text().strip().splitlines()
    assert len(gens) == 4


def test_mismatched_inputs_are_refused(scripts, pipeline, tmp_path):
    # A stage refuses a checkpoint made with other settings, naming what to do.
    p = scripts.run("02_train_vae.py", pipeline, "--z-size", "4", check=False)
    assert p.returncode == 1 and "other settings" in p.stderr
    # A missing vision model: stage 3 names the script to run.
    empty = tmp_path / "empty"
    p = scripts.run("03_generate_rnn_data.py", empty, check=False)
    assert p.returncode == 1
    assert "rollouts" in p.stderr and "01_generate_data.py" in p.stderr


def test_plots_report_and_video(scripts, pipeline, tmp_path):
    import re

    from PIL import Image

    for png, size in [
        ("vision/reconstructions.png", (8 * 64 * 2, 2 * 64 * 2)),
        ("memory/predictions.png", (11 * 64 * 2, 3 * 64 * 2)),
        ("controller/cmaes.png", None),
    ]:
        img = Image.open(pipeline / png)
        assert img.format == "PNG"
        if size:
            assert img.size == size, png
    report = (pipeline / "report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", report)
    assert {"vision/reconstructions.png", "memory/predictions.png", "controller/cmaes.png"} <= set(links)
    assert all((pipeline / link).exists() for link in links)
    assert "## Wall time per stage" in report and "| 05 controller |" in report and "## Score" in report

    video = tmp_path / "run.mp4"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "worldmodels.tools.play",
            "--model-dir",
            str(pipeline),
            "--episodes",
            "2",
            "--max-steps",
            "15",
            "--video",
            str(video),
        ],
        cwd=scripts.root,
        env=env,
        check=True,
        capture_output=True,
    )
    import imageio.v2 as imageio

    with imageio.get_reader(video, format="FFMPEG") as r:
        frames = [f for f in r]
    assert len(frames) == 30  # 2 episodes x 15 steps
    assert frames[0].shape == (64 * 4, (128 + 1) * 4, 3)


def test_rollouts_with_other_settings_are_not_mixed(scripts, pipeline, tmp_path):
    import shutil

    shutil.copytree(pipeline / "rollouts", tmp_path / "rollouts")
    p = scripts.run("01_generate_data.py", tmp_path, "--max-steps", "30", check=False)
    assert p.returncode == 1 and "collected with other settings" in p.stderr
    assert len(list((tmp_path / "rollouts").glob("*.npz"))) == 4
