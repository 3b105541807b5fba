"""results/ and docs/results.md: every published score is a file, and the index is what the files say."""

import json

import numpy as np
import pytest

from worldmodels.tools import results


def test_docs_results_md_is_what_the_results_files_give():
    """docs/results.md is rebuilt from results/*.json; a stale one fails here (fix: make results)."""
    assert results.DOC.read_text() == results.render(results.load_results()), "run `make results`"
    assert results.main(["--check"]) == 0


def test_every_results_file_is_a_complete_scored_result():
    """Each file names its env, policy, seed range and seeds, and its summary is its own scores'."""
    from worldmodels.io.seeding import seed_range

    rows = results.load_results()
    assert rows, "no results files"
    for r in rows:
        a = np.asarray(r["scores"], np.float64)
        assert len(a) == r["episodes"] == r["seeds"][1] - r["seeds"][0] + 1, r["file"]
        assert r["seed_range"] == seed_range(r["seeds"][0], r["episodes"]), r["file"]
        assert r["policy"] in ("agent", "random"), r["file"]
        assert r["mean"] == pytest.approx(a.mean()) and r["std"] == pytest.approx(a.std()), r["file"]
        assert r["standard_error"] == pytest.approx(a.std() / np.sqrt(len(a))), r["file"]


def test_a_row_shows_range_mean_std_and_standard_error(tmp_path):
    scores = [100.0, 300.0, 800.0, 800.0]
    rec = {"env": "doom", "policy": "random", "seeds": [4000000000, 4000000003], "seed_range": "final"}
    (tmp_path / "r.json").write_text(json.dumps({**rec, "scores": scores}))
    text = results.render(results.load_results(tmp_path))
    row = next(line for line in text.splitlines() if line.startswith("| random policy"))
    assert "| final | 4000000000 .. 4000000003 | 4 | 500.0 ± 308.2 | 154.1 | 50.0% |" in row


def test_a_file_that_is_not_a_result_is_named(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"env": "doom"}))
    with pytest.raises(SystemExit, match="bad.json"):
        results.load_results(tmp_path)
