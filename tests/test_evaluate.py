"""python -m worldmodels.evaluate: held-out scoring of the random policy and of a saved agent."""

import json

import numpy as np

from worldmodels.io.seeding import EVAL_SEED_BASE, TRAIN_SEED_RANGE, eval_seeds, train_seed
from worldmodels.tools.evaluate import main


def test_eval_and_train_seeds_never_overlap():
    train = {train_seed(s, i) for s in range(5) for i in range(2000)}
    assert max(train) < TRAIN_SEED_RANGE <= EVAL_SEED_BASE
    assert min(eval_seeds(100)) >= EVAL_SEED_BASE


def test_random_policy_scores_are_written(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(
        [
            "--policy",
            "random",
            "--episodes",
            "2",
            "--max-steps",
            "30",
            "--workers",
            "1",
            "--fast",
            "--model-dir",
            str(tmp_path),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    res = json.loads(out.read_text())
    assert len(res["scores"]) == 2 and np.isfinite(res["scores"]).all()
    assert res["mean"] == np.mean(res["scores"])
    # 30 steps of random actions on the start line: at most a few tiles, and -0.1 per step.
    assert all(-3.1 <= s < 40 for s in res["scores"])
    assert "random on carracing" in capsys.readouterr().out


def test_missing_agent_is_a_clear_error(tmp_path, capsys):
    rc = main(["--episodes", "1", "--model-dir", str(tmp_path)])
    assert rc == 1
    assert "05_train_controller.py" in capsys.readouterr().err
