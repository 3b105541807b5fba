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
    row = next(line for line in text.split("## Every result")[1].splitlines() if line.startswith("| random policy"))
    assert "| final | 4000000000 .. 4000000003 | 4 | 500.0 ± 308.2 | 154.1 | 50.0% |" in row


def test_a_file_that_is_not_a_result_is_named(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"env": "doom"}))
    with pytest.raises(SystemExit, match="bad.json"):
        results.load_results(tmp_path)


def test_readme_and_index_figures_come_from_results_files():
    """Every 'mean ± std', 'standard error X' and 'P% of' in the README's prose and in docs/results.md
    is a figure of a results file named beside it (or one of the paper's)."""
    for path in (results.ROOT / "README.md", results.DOC):
        assert results.unbacked_figures(path.read_text()) == [], path


def test_a_figure_that_no_named_file_gives_is_caught(tmp_path):
    scores = [100.0, 300.0, 800.0, 800.0]  # 500.0 ± 308.2, standard error 154.1, 50% >= 750
    rec = {"env": "doom", "policy": "agent", "seeds": [4000000000, 4000000003], "scores": scores}
    (tmp_path / "r.json").write_text(json.dumps(rec))

    def check(text):
        return results.unbacked_figures(text, tmp_path)

    assert check("It scored 500.0 ± 308.2 (standard error 154.1; 50% of episodes), `results/r.json`.") == []
    assert check("It scored 500 ± 308 (`results/r.json`).") == []  # rounded as shown
    assert check("The paper's agent made 906 ± 21; its random policy 210 ± 108.") == []
    assert len(check("It scored 510.0 ± 308.2 (`results/r.json`).")) == 1  # a wrong mean
    assert len(check("It scored 500.0 ± 308.2.")) == 1  # no file named
    assert len(check("It scored 500.0 ± 308.2, standard error 15.4 (`results/r.json`).")) == 1
    assert len(check("500.0 ± 308.2 and 60% of episodes (`results/r.json`).")) == 1
    assert len(check("500.0 ± 308.2 (`bench/results/r.json`).")) == 1  # not a results file
    # a table checks row by row: a row's figure must be in that row's file
    table = "| a | 500.0 ± 308.2 | [r.json](../results/r.json) |\n| b | 500.0 ± 308.2 | - |"
    assert [p.split(" is ")[0] for p in check(table)] == ["500.0 ± 308.2"]


def test_tables_fill_rows_from_their_files_and_name_the_missing(tmp_path):
    """Table 1 and Table 2 take each row from its named file, with the paper's value beside; a row
    whose file is not there yet says so and names the command that makes it."""
    scores = list(np.linspace(600.0, 900.0, 100))
    full = {"env": "carracing", "policy": "agent", "seeds": [4000000000, 4000000099], "scores": scores}
    full_file = next(f for row, f, *_ in results.TABLE1 if row.startswith("full World Model (C on [z h])"))
    (tmp_path / full_file).write_text(json.dumps(full))
    dream, real = results.table2_files(1.15)
    doom = {"env": "doom", "policy": "agent", "seeds": [4000000000, 4000000001]}
    (tmp_path / dream).write_text(json.dumps({**doom, "scores": [2100.0, 1900.0]}))
    (tmp_path / real).write_text(json.dumps({**doom, "scores": [700.0, 900.0]}))
    text = results.render(results.load_results(tmp_path))
    full_row = next(line for line in text.splitlines() if line.startswith("| full World Model (C on [z h])"))
    assert "| 750.0 ± 87.5 (8.7) | 100 (4000000000 ..) | 67.0% | 906 ± 21 |" in full_row
    v_only = next(line for line in text.splitlines() if line.startswith("| V only"))
    assert "not measured yet" in v_only and "632 ± 251" in v_only and "--seed-range final" in v_only
    row = next(line for line in text.splitlines() if line.startswith("| 1.15 |"))
    assert "| 2000.0 ± 100.0 (70.7) | 2 (4000000000 ..) | 800.0 ± 100.0 (70.7) | 2 (4000000000 ..) | 50.0% |" in row
    assert "| 918 | 1092 ± 556 |" in row
    assert "not measured yet" in next(line for line in text.splitlines() if line.startswith("| 0.1 |"))
    assert results.unbacked_figures(text, tmp_path) == []


def test_small_scores_keep_two_decimals():
    """An Atari game's few points: one decimal would show a standard error of 0.0."""
    assert results.summary_cells([2.0, 3.0, 2.0, 2.0], None) == "2.25 ± 0.43 | 0.22 | -"
    assert results.summary_cells([800.0, 900.0], 700.0) == "850.0 ± 50.0 | 35.4 | 100.0%"


def test_paired_compares_two_results_on_the_episodes_they_share(tmp_path, capsys):
    """--paired A B: B - A per shared seed (A's seeds 10..13, B's 12..15: seeds 12 and 13 shared)."""
    a = {"env": "doom", "policy": "agent", "seeds": [10, 13], "scores": [1.0, 2.0, 300.0, 500.0]}
    b = {"env": "doom", "policy": "agent", "seeds": [12, 15], "scores": [310.0, 700.0, 9.0, 9.0]}
    for name, r in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    p = results.paired({**a, "file": "a"}, {**b, "file": "b"})
    assert p["episodes"] == 2 and p["seeds"] == [12, 13]
    assert (p["mean_a"], p["mean_b"], p["difference"]) == (400.0, 505.0, 105.0)
    assert p["std"] == pytest.approx(95.0) and p["standard_error"] == pytest.approx(95.0 / np.sqrt(2))
    assert (p["b_higher"], p["b_lower"]) == (2, 0)
    assert results.main(["--paired", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    assert "B - A: +105.0 ± 95.0 (standard error 67.2); B higher on 2, lower on 0" in capsys.readouterr().out


def test_paired_refuses_results_that_cannot_be_compared(tmp_path, capsys):
    base = {"env": "doom", "policy": "agent", "seeds": [10, 11], "scores": [1.0, 2.0]}
    cases = {
        "other-seeds": ({**base, "seeds": [20, 21]}, "share no seed"),
        "other-env": ({**base, "env": "carracing"}, "differ in env"),
        "dream": ({**base, "where": "dream"}, "differ in where"),
    }
    (tmp_path / "a.json").write_text(json.dumps(base))
    for name, (r, message) in cases.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
        assert results.main(["--paired", str(tmp_path / "a.json"), str(tmp_path / f"{name}.json")]) == 1
        assert message in capsys.readouterr().err
    assert results.main(["--paired", str(tmp_path / "a.json"), str(tmp_path / "missing.json")]) == 1
    assert "missing.json does not exist" in capsys.readouterr().err
