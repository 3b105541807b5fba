"""The shipped agents under pretrained/: complete, small, and they drive."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "pretrained"


def test_shipped_models_are_complete_and_under_50_mb():
    bundles = sorted(p for p in PRETRAINED.iterdir() if p.is_dir())
    assert bundles, "nothing shipped under pretrained/"
    for b in bundles:
        for f in (
            "vision/config.json",
            "vision/encoder.npz",
            "vision/decoder.npz",
            "memory/rnn.npz",
            "controller/best.npz",
            "controller/eval.json",
            "MODEL_CARD.md",
        ):
            assert (b / f).exists(), b / f
    assert sum(f.stat().st_size for f in PRETRAINED.rglob("*") if f.is_file()) < 50e6


def test_model_cards_check_commands_name_their_own_bundle():
    """Each card's "check it yourself" command points at its own folder, as typed from the repository
    root on a fresh clone (not the path it was exported to on some machine)."""
    import re

    for card in PRETRAINED.glob("*/MODEL_CARD.md"):
        dirs = re.findall(r"worldmodels\.evaluate .*--data-dir (\S+)", card.read_text())
        assert dirs, card
        assert set(dirs) == {f"pretrained/{card.parent.name}"}, (card, dirs)


def test_card_paths_are_shown_relative_to_the_working_directory(tmp_path, monkeypatch):
    from worldmodels.tools.export_pretrained import _shown

    monkeypatch.chdir(tmp_path)
    assert _shown(tmp_path / "pretrained" / "x") == "pretrained/x"
    assert _shown(Path("pretrained/x")) == "pretrained/x"
    assert _shown(Path("/elsewhere/x")) == "/elsewhere/x"


@pytest.mark.slow  # plays full episodes in worker processes (and the ViZDoom engine)
@pytest.mark.parametrize("bundle, env, fast", [("carracing-laptop", "carracing", True), ("doom-laptop", "doom", False)])
def test_shipped_agents_reproduce_their_recorded_scores(bundle, env, fast):
    """Scored again on the first two held-out seeds, each shipped agent gives exactly the per-episode
    scores its eval.json records (CarRacing on the fast renderer, whose pixels equal the stock env's)."""
    import json

    from worldmodels.tools.evaluate import evaluate

    recorded = json.loads((PRETRAINED / bundle / "controller" / "eval.json").read_text())
    first = recorded["seeds"][0]
    res = evaluate(env, PRETRAINED / bundle, 2, first, 2, "agent", fast, recorded["max_steps"])
    assert res["seeds"] == [first, first + 1]
    assert res["scores"] == recorded["real"]["scores"][:2]


def test_shipped_decoder_reproduces_v(rng):
    """load_vae from encoder.npz + float16 decoder.npz equals the Keras V up to float16 rounding."""
    from worldmodels.models.vae import build_vae, export_decoder, export_encoder, load_vae

    vae = build_vae(8, 0.5)
    with tempfile.TemporaryDirectory() as t:
        np.savez(Path(t) / "encoder.npz", **export_encoder(vae))
        np.savez(Path(t) / "decoder.npz", **export_decoder(vae))
        shipped = load_vae(t, 8, 0.5)
    x = tf.constant(rng.uniform(size=(2, 64, 64, 3)), tf.float32)
    np.testing.assert_array_equal(shipped.encode(x)[0].numpy(), vae.encode(x)[0].numpy())
    np.testing.assert_allclose(shipped(x).numpy(), vae(x).numpy(), atol=2e-2)


def test_model_card_quotes_results_files_of_this_agent_only(tmp_path, capsys):
    """export-pretrained --results puts each results file's row (range, seeds, mean ± std, standard
    error, share of good episodes, the file) in the card, and refuses one that scored other weights."""
    import json

    from worldmodels.tools.evaluate import main as evaluate_main
    from worldmodels.tools.export_pretrained import main as export_main
    from worldmodels.tools.results import score_decimals

    bundle = PRETRAINED / "carracing-laptop"
    mine, other = tmp_path / "mine.json", tmp_path / "other.json"
    common = ["--data-dir", str(bundle), "--episodes", "2", "--max-steps", "5", "--workers", "1", "--fast-env"]
    assert evaluate_main([*common, "--out", str(mine)]) == 0
    result = json.loads(mine.read_text())
    out = tmp_path / "shipped"
    assert export_main(["--data-dir", str(bundle), "--out", str(out), "--results", str(mine)]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    row = next(line for line in card.splitlines() if str(mine) in line)
    se = np.std(result["scores"]) / np.sqrt(2)
    assert "development range, seeds 2000000000 .. 2000000001" in row
    d = score_decimals(result["mean"], result["std"])  # 5 steps score a few points: two decimals
    assert f"{result['mean']:.{d}f} ± {result['std']:.{d}f} | {se:.{d}f} | 0.0% |" in row  # none reach 700

    result["model"]["controller_fingerprint"] = "0" * 16  # another controller's score
    other.write_text(json.dumps(result))
    capsys.readouterr()
    assert export_main(["--data-dir", str(bundle), "--out", str(tmp_path / "no"), "--results", str(other)]) == 1
    assert "scored other weights" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()  # nothing half-written
