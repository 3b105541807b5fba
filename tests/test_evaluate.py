"""worldmodels evaluate: held-out scoring of the random policy and of a saved agent, on the seeds asked."""

import json

import numpy as np
import pytest

from worldmodels.io.seeding import TRAIN_SEED_RANGE, eval_seeds, train_seed
from worldmodels.runtime.rollout import init_random_worker, random_policy_task
from worldmodels.tools.evaluate import main


def test_training_seeds_stay_below_the_held_out_range():
    train = [train_seed(s, i) for s in range(5) for i in range(2000)]
    assert max(train) < TRAIN_SEED_RANGE
    assert len(set(train)) > 9990  # distinct tracks, not a few repeated ones
    assert not set(train) & set(eval_seeds(100))


def test_evaluate_plays_exactly_the_seeds_asked(tmp_path, capsys):
    """--seed-offset S scores env seeds S, S+1 (one meaning everywhere); each score is the one a
    direct play of that seed gives, with one worker or two."""
    out1, out2 = tmp_path / "w1.json", tmp_path / "w2.json"
    common = ["--policy", "random", "--episodes", "2", "--max-steps", "30", "--fast-env", "--data-dir", str(tmp_path)]
    assert main([*common, "--seed-offset", "2000000005", "--workers", "1", "--out", str(out1)]) == 0
    assert main([*common, "--seed-offset", "2000000005", "--workers", "2", "--out", str(out2)]) == 0
    r1, r2 = json.loads(out1.read_text()), json.loads(out2.read_text())
    assert r1["seeds"] == [2000000005, 2000000006] and r1["renderer"] == "fast"
    init_random_worker("carracing", True)
    plays = [random_policy_task((s, 30)) for s in (2000000005, 2000000006)]
    direct = [score for score, _ in plays]
    assert r1["scores"] == direct == r2["scores"]
    assert r1["steps"] == [steps for _, steps in plays] == r2["steps"] == [30, 30]  # each episode's length
    assert direct[0] != direct[1]  # two tracks, not one seed twice
    assert r1["mean"] == np.mean(direct)
    assert "random on carracing (fast renderer)" in capsys.readouterr().out
    # where the figure came from travels with it (issue 19): the command, the commit, the machine
    assert r1["command"].startswith("python -m worldmodels.evaluate --policy random")
    assert "--seed-offset 2000000005" in r1["command"] and r1["model"] is None
    assert r1["machine"]["cpus"] >= 1 and r1["date"]
    assert r1["commit"] is None or len(r1["commit"].split("-")[0]) == 40


def test_agent_results_name_the_weights_they_scored(tmp_path):
    """An agent's result carries each part's fingerprint: the controller's is the one stage 5 wrote."""
    from pathlib import Path

    bundle = Path(__file__).resolve().parents[1] / "pretrained" / "carracing-laptop"
    out = tmp_path / "a.json"
    args = ["--data-dir", str(bundle), "--episodes", "1", "--max-steps", "5", "--workers", "1", "--fast-env"]
    assert main([*args, "--out", str(out)]) == 0
    model = json.loads(out.read_text())["model"]
    configs = {k: json.loads((bundle / k / "config.json").read_text()) for k in ("vision", "memory", "controller")}
    assert model["dir"] == str(bundle)
    assert {k: model[f"{k}_fingerprint"] for k in configs} == {k: c["fingerprint"] for k, c in configs.items()}


def test_missing_agent_is_a_clear_error(tmp_path, capsys):
    rc = main(["--episodes", "1", "--data-dir", str(tmp_path)])
    assert rc == 1
    assert "05_train_controller.py" in capsys.readouterr().err


def test_old_flag_spellings_still_work(tmp_path):
    """--model-dir and --fast are hidden aliases of --data-dir and --fast-env."""
    out = tmp_path / "r.json"
    args = ["--policy", "random", "--episodes", "1", "--max-steps", "5", "--workers", "1", "--out", str(out)]
    assert main([*args, "--model-dir", str(tmp_path), "--fast"]) == 0
    assert json.loads(out.read_text())["renderer"] == "fast"
    assert main([*args, "--model-dir", str(tmp_path)]) == 0
    assert json.loads(out.read_text())["renderer"] == "stock"


def test_seed_ranges_are_disjoint_and_named():
    from worldmodels.io.seeding import FINAL_SEED_BASE, SEED_RANGES, seed_range

    bounds = sorted(SEED_RANGES.values())
    assert all(a[1] <= b[0] for a, b in zip(bounds, bounds[1:]))  # no overlap
    assert seed_range(0) == "training" and seed_range(TRAIN_SEED_RANGE - 1) == "training"
    assert seed_range(eval_seeds(1)[0], 100) == "development"
    assert seed_range(FINAL_SEED_BASE, 300) == "final" and seed_range(2**32 - 1) == "final"
    for first, n in ((FINAL_SEED_BASE - 5, 10), (TRAIN_SEED_RANGE - 1, 2), (2**32, 1)):
        with pytest.raises(ValueError):
            seed_range(first, n)


def test_a_result_names_its_seed_range_and_standard_error(tmp_path, capsys):
    """--seed-range final starts at the final range; a result records the range, std and standard
    error; seeds straddling two ranges are refused before anything is played."""
    from worldmodels.io.seeding import FINAL_SEED_BASE

    out = tmp_path / "r.json"
    args = ["--policy", "random", "--episodes", "3", "--max-steps", "5", "--workers", "1", "--out", str(out)]
    assert main([*args, "--data-dir", str(tmp_path), "--seed-range", "final", "--fast-env"]) == 0
    r = json.loads(out.read_text())
    assert r["seeds"] == [FINAL_SEED_BASE, FINAL_SEED_BASE + 2] and r["seed_range"] == "final"
    assert r["standard_error"] == pytest.approx(np.std(r["scores"]) / np.sqrt(3))
    assert "of the final range" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main([*args, "--data-dir", str(tmp_path), "--seed-offset", str(FINAL_SEED_BASE - 1)])
    assert e.value.code == 2 and "straddle" in capsys.readouterr().err


def test_revalidate_rechooses_from_the_checks_stage5_recorded(run_copy, tmp_path, capsys):
    """Stage 5 keeps every checked candidate with its per-track validation scores; revalidate picks,
    on all of them, exactly what stage 5 kept, and on fewer tracks the best mean over those tracks,
    written as a controller that evaluate loads."""
    import shutil

    from worldmodels.config import Run, make_stage_config
    from worldmodels.experiments import revalidate
    from worldmodels.models.loading import load_controller
    from worldmodels.runtime.evolution import load_state
    from worldmodels.stages.train_controller import train_controller

    assert revalidate.main(["--data-dir", str(run_copy)]) == 1  # the fixture's run validated nothing
    assert "no validation checks" in capsys.readouterr().err
    shutil.rmtree(run_copy / "controller")
    overrides = {"generations": 3, "eval_every": 1, "val_episodes": 3, "eval_episodes": 1}
    overrides.update(max_steps=15, eval_max_steps=15, population=4, trials=1)
    cfg = make_stage_config("controller", "carracing", "tiny", overrides)
    train_controller(Run("carracing", "tiny", run_copy, 0, 1), cfg)
    state = load_state(run_copy / "controller" / "es_state.pkl")
    checks = state["checks"]
    assert [(c["generation"], c["name"]) for c in checks] == [(g, n) for g in (1, 2, 3) for n in ("best", "mean")]
    assert all(len(c["scores"]) == 3 for c in checks)
    kept = checks[revalidate.choose(checks, 3)]
    np.testing.assert_array_equal(kept["params"], state["val_params"])
    assert np.mean(kept["scores"]) == state["val_score"]
    one = revalidate.choose(checks, 1)
    assert checks[one]["scores"][0] == max(c["scores"][0] for c in checks)
    with pytest.raises(revalidate.StageError, match="between 1 and the 3"):
        revalidate.choose(checks, 4)

    assert revalidate.main(["--data-dir", str(run_copy), "--tracks", "1", "--write", "controller_val1"]) == 0
    table = capsys.readouterr().out
    assert table.count("(kept)") == 2 and "mean, first 1" in table and "mean, first 3" in table
    cfg, params = load_controller(run_copy, "carracing", "controller_val1")
    np.testing.assert_array_equal(params, np.asarray(checks[one]["params"], np.float32))
    assert cfg["generation"] == checks[one]["generation"] and "first 1 tracks" in cfg["selected_by"]

    # More tracks after the run: the next validation seeds, played in the real env as evaluate plays
    # them, cached per candidate so a rerun replays nothing.
    from worldmodels.io.seeding import eval_seeds
    from worldmodels.stages.train_controller import VALIDATION_OFFSET
    from worldmodels.tools.evaluate import evaluate

    args = ["--data-dir", str(run_copy), "--workers", "1", "--extend", "2", "--from-generation", "2"]
    assert revalidate.main([*args, "--tracks", "5", "--write", "controller_val5"]) == 0
    table = capsys.readouterr().out
    assert "mean, first 5" in table and "| 1 |" not in table  # generation 1 is left out
    cache = json.loads((run_copy / "controller" / "revalidate.json").read_text())
    first = eval_seeds(2, VALIDATION_OFFSET + 3)
    assert cache["seeds"] == [first[0], first[-1]] and len(cache["candidates"]) == 4
    cfg5, params5 = load_controller(run_copy, "carracing", "controller_val5")
    played = evaluate("carracing", run_copy, 2, first[0], 1, "agent", True, 15, name="controller_val5")
    key = next(k for k in cache["candidates"] if k.startswith(f"{cfg5['generation']}/"))
    assert cache["candidates"][key] == played["scores"]
    kept = next(c for c in checks if np.array_equal(np.asarray(c["params"], np.float32), params5))

    def kept_mean(table):
        return float(table.split("(kept)")[0].split("|")[-1])

    assert np.mean([*kept["scores"], *played["scores"]]) == pytest.approx(kept_mean(table), abs=0.06)
    cache["candidates"] = {k: [1e6, 1e6] for k in cache["candidates"]}
    (run_copy / "controller" / "revalidate.json").write_text(json.dumps(cache))
    assert revalidate.main([*args, "--tracks", "5"]) == 0
    assert kept_mean(capsys.readouterr().out) > 1e5  # the cached scores, not replayed
    assert revalidate.main(["--data-dir", str(run_copy), "--extend", "-1"]) == 1
    assert "--extend must be" in capsys.readouterr().err
