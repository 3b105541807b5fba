"""tail_mean: one controller averaged over the last CMA-ES means of one or several searches."""

import json

import numpy as np

from worldmodels.experiments import tail_mean
from worldmodels.runtime.evolution import save_state

N = 5
SIZES = {"z_size": 1, "rnn_size": 1, "outputs": 1}


def _write_search(path, checks):
    """A controller directory at `path` whose search state (generation 40) holds these checks."""
    state = {"es": None, "generation": 40, "best_params": np.zeros(N), "best_reward": 0.0, "history": []}
    state.update(settings={}, wall_s=1.0, checks=checks)
    path.mkdir(parents=True)
    save_state(path / "es_state.pkl", state)
    config = {"kind": "linear", "env": "carracing", "inputs": "zh", "n_params": N, **SIZES}
    (path / "config.json").write_text(json.dumps(config))


def _search(path, offset):
    """A search state with 4 checked generations; the mean check of generation g holds offset + g."""
    checks = []
    for g in (10, 20, 30, 40):
        checks.append({"generation": g, "name": "best", "params": np.full(N, -1.0), "scores": [0.0]})
        checks.append({"generation": g, "name": "mean", "params": np.full(N, offset + g, float), "scores": [1.0]})
    _write_search(path, checks)


def test_the_last_means_of_each_search_are_averaged_then_the_searches(tmp_path, capsys):
    from worldmodels.models.loading import load_controller

    _search(tmp_path / "controller" / "search-0", 0.0)
    _search(tmp_path / "controller" / "search-1", 100.0)
    names = ["controller/search-0", "controller/search-1"]
    args = ["--env", "carracing", "--data-dir", str(tmp_path), "--last", "2", "--write", "tail2"]
    assert tail_mean.main([*args, "--name", *names]) == 0
    assert "tail2" in capsys.readouterr().out
    cfg, params = load_controller(tmp_path, "carracing", "tail2")
    # search 0: mean of 30 and 40 = 35; search 1: 135; their mean 85. The "best" checks are left out.
    np.testing.assert_array_equal(params, np.full(N, 85.0, np.float32))
    assert cfg["generation"] == 40 and "last 2 checked CMA-ES means" in cfg["selected_by"]
    assert "controller/search-1: generations 30, 40" in cfg["selected_by"]


def test_one_search_and_the_last_mean_alone(tmp_path):
    _search(tmp_path / "controller", 0.0)
    params, generations = tail_mean.tail_mean(
        [tail_mean.load_checks(tmp_path / "controller" / "es_state.pkl")], 1
    )
    np.testing.assert_array_equal(params, np.full(N, 40.0, np.float32))
    assert generations == [[40]]


def test_bad_requests_fail_clearly_and_write_nothing(tmp_path, capsys):
    _search(tmp_path / "controller", 0.0)
    base = ["--env", "carracing", "--data-dir", str(tmp_path)]
    assert tail_mean.main([*base, "--last", "5", "--write", "t"]) == 1
    assert "between 1 and the 4" in capsys.readouterr().err
    assert tail_mean.main([*base, "--write", "controller"]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert tail_mean.main([*base, "--name", "nothing", "--write", "t"]) == 1
    assert "run stage 5" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def _scored_search(path, picks):
    """A search whose check (g, name) scores picks.get((g, name), 0) on each of 3 tracks; its params are
    all g for the mean check, g + 0.5 for the best one."""
    checks = [
        {
            "generation": g,
            "name": name,
            "params": np.full(N, g + (0.5 if name == "best" else 0.0), np.float32),
            "scores": [picks.get((g, name), 0.0)] * 3,
        }
        for g in (10, 20, 30, 40)
        for name in ("best", "mean")
    ]
    _write_search(path, checks)


def test_validation_pick_averages_each_searchs_chosen_candidate_up_to_a_generation(tmp_path):
    from worldmodels.models.loading import load_controller

    # search 0's validation prefers generation 40's mean, and generation 20's best up to 30;
    # search 1's prefers generation 10's mean throughout (a tie with generation 30's keeps the earlier).
    _scored_search(tmp_path / "a" / "controller", {(40, "mean"): 900.0, (20, "best"): 800.0})
    _scored_search(tmp_path / "b" / "controller", {(10, "mean"): 700.0, (30, "mean"): 700.0})
    base = ["--env", "carracing", "--data-dir", str(tmp_path / "a"), "--pick", "validation"]
    names = ["--name", "controller", "../b/controller"]
    assert tail_mean.main([*base, "--write", "all", *names]) == 0
    cfg, params = load_controller(tmp_path / "a", "carracing", "all")
    np.testing.assert_array_equal(params, np.full(N, (40.0 + 10.0) / 2, np.float32))
    assert "controller: generation 40 mean; ../b/controller: generation 10 mean" in cfg["selected_by"]
    assert tail_mean.main([*base, "--up-to-generation", "30", "--write", "g30", *names]) == 0
    _, params = load_controller(tmp_path / "a", "carracing", "g30")
    np.testing.assert_array_equal(params, np.full(N, (20.5 + 10.0) / 2, np.float32))


def test_a_generation_before_the_first_check_fails_clearly(tmp_path, capsys):
    _scored_search(tmp_path / "controller", {})
    args = ["--env", "carracing", "--data-dir", str(tmp_path), "--pick", "validation", "--write", "t"]
    assert tail_mean.main([*args, "--up-to-generation", "5"]) == 1
    assert "no check at or before generation 5" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
