"""The shipped agents under pretrained/: complete, small, and they drive."""

import tempfile
from pathlib import Path

import numpy as np
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


def test_pretrained_carracing_agent_drives():
    from worldmodels.tools.evaluate import evaluate

    res = evaluate("carracing", PRETRAINED / "carracing-laptop", 1, 3_000_000_000, 1, "agent", True, 200)
    assert res["seeds"] == [3_000_000_000, 3_000_000_000]
    # 200 steps of a driving agent visit tiles (about +3.5 each, -0.1 per step); a parked car scores -20.
    assert res["mean"] > 100, res


def test_pretrained_doom_agent_loads_and_plays():
    from worldmodels.tools.evaluate import evaluate

    res = evaluate("doom", PRETRAINED / "doom-laptop", 2, 3_000_000_000, 1, "agent", False, 100)
    assert res["seeds"] == [3_000_000_000, 3_000_000_001]
    assert all(1 <= s <= 100 for s in res["scores"]), res  # survival steps, capped at 100


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
