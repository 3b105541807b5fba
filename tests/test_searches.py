"""Stage 5 with --searches N: N independent CMA-ES searches, the best on selection episodes kept (or,
with --combine mean, the mean of their controllers)."""

import json

import numpy as np


def _train(run_dir, name, searches, seed=0, combine="best"):
    from worldmodels.config import Run, make_stage_config
    from worldmodels.stages.train_controller import train_controller

    overrides = {
        **{"generations": 1, "eval_episodes": 1, "eval_max_steps": 20, "max_steps": 20, "eval_every": 0},
        **{"name": name, "searches": searches, "select_episodes": 2, "combine": combine},
    }
    run = Run(env="carracing", preset="tiny", data_dir=run_dir, seed=seed, workers=1)
    return train_controller(run, make_stage_config("controller", "carracing", "tiny", overrides))


def _params(path):
    with np.load(path) as f:
        return f["params"]


def test_searches_keep_the_one_best_on_selection_episodes(run_copy):
    out = _train(run_copy, "k2", 2)
    sel = json.loads((out / "selection.json").read_text())
    assert [r["dir"] for r in sel["searches"]] == ["search-0", "search-1"]
    assert [r["seed"] for r in sel["searches"]] == [0, 1]  # seed S*N+i
    assert sel["episodes"] == 2 and sel["in"] == "real"
    means = [r["mean"] for r in sel["searches"]]
    assert means == [float(np.mean(r["scores"])) for r in sel["searches"]]
    assert sel["selected"] == int(np.argmax(means))
    kept = out / sel["searches"][sel["selected"]]["dir"] / "best.npz"
    np.testing.assert_array_equal(_params(out / "best.npz"), _params(kept))
    assert json.loads((out / "config.json").read_text())["search_seed"] == sel["searches"][sel["selected"]]["seed"]
    # Search 0 of seed 0 is the single search of seed 0 (the tiny run's own controller/): one search
    # is what it always was, and the others differ.
    np.testing.assert_array_equal(_params(out / "search-0" / "best.npz"), _params(run_copy / "controller" / "best.npz"))
    assert not np.array_equal(_params(out / "search-0" / "best.npz"), _params(out / "search-1" / "best.npz"))
    assert (out / "eval.json").exists() and (out / "cmaes.png").exists()


def test_rerun_reuses_the_searches_and_the_selection(run_copy):
    out = _train(run_copy, "k2", 2)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "selection.json", out / "eval.json")}
    again = _train(run_copy, "k2", 2)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    np.testing.assert_array_equal(_params(again / "best.npz"), _params(out / "best.npz"))


def test_combine_mean_keeps_the_mean_of_the_searches_controllers(run_copy):
    out = _train(run_copy, "m2", 2, combine="mean")
    searches = [_params(out / f"search-{i}" / "best.npz") for i in range(2)]
    assert not np.array_equal(*searches)
    np.testing.assert_array_equal(_params(out / "best.npz"), np.mean(searches, axis=0).astype(np.float32))
    # The searches are the ones --combine best runs: the mode only changes what is kept.
    np.testing.assert_array_equal(searches[0], _params(run_copy / "controller" / "best.npz"))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["search_seeds"] == [0, 1] and "search_seed" not in cfg
    assert cfg["selected_by"] == "the mean of 2 searches' chosen controllers"
    assert json.loads((out / "eval.json").read_text())["fingerprint"] == cfg["fingerprint"]
    assert not (out / "selection.json").exists()  # no selection episodes are played
    rows = (out / "generations.csv").read_text().splitlines()
    assert len(rows) == 2  # header and the one generation: the searches' mean


def test_other_seeds_never_share_a_search(run_copy):
    out = _train(run_copy, "k2s1", 2, seed=1)
    assert [r["seed"] for r in json.loads((out / "selection.json").read_text())["searches"]] == [2, 3]


def test_exported_card_says_how_the_search_was_chosen(run_copy, tmp_path):
    import shutil

    from worldmodels.tools.export_pretrained import export

    out = _train(run_copy, "k2", 2)
    # export reads controller/: make the two-search result the run's controller.
    shutil.rmtree(run_copy / "controller")
    out.rename(run_copy / "controller")
    bundle = export(run_copy, tmp_path / "bundle", "make run", "test machine")
    card = (bundle / "MODEL_CARD.md").read_text()
    assert "the best of 2 searches (seeds 0 .. 1) on 2 held-out real episodes" in card
    assert json.loads((bundle / "controller" / "selection.json").read_text())["episodes"] == 2


def test_exported_card_says_the_controller_is_a_mean(run_copy, tmp_path):
    import shutil

    from worldmodels.tools.export_pretrained import export

    out = _train(run_copy, "m2", 2, combine="mean")
    shutil.rmtree(run_copy / "controller")
    out.rename(run_copy / "controller")
    card = (export(run_copy, tmp_path / "bundle", "make run", "test machine") / "MODEL_CARD.md").read_text()
    assert "the mean of 2 searches' controllers (seeds 0 .. 1)" in card
