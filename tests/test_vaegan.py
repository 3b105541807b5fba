"""The VAE-GAN (issue 5): losses' shapes and signs, its three optimisers, the plain-VAE export,
exact checkpoint resume, and the toy experiment's claim."""

import numpy as np
import pytest
import tensorflow as tf

from worldmodels.io.checkpoints import load_checkpoint, save_checkpoint
from worldmodels.models.vaegan import build_vaegan


def frames(rng, n=4):
    return rng.integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("gan", ["gan", "wgan-gp"])
def test_losses_have_the_right_shapes_and_signs(rng, gan):
    model = build_vaegan(8, 0.5, gan, 0.01, 0.0)
    x = tf.constant(frames(rng), tf.float32) / 255.0
    logits, feats = model.discriminate(x)
    assert logits.shape == (4,) and feats.shape == (4, 6 * 6 * 128)
    out = model.losses_for(x)
    for k, v in out.items():
        assert v.shape == () and np.isfinite(float(v)), k
    assert float(out["kl"]) >= 0 and float(out["llike"]) >= 0 and float(out["r_loss"]) > 0
    # The encoder's loss is the floored KL plus the feature error; the decoder's weighs it by gamma.
    assert float(out["loss"]) == pytest.approx(max(float(out["kl"]), 0.5 * 8) + float(out["llike"]), rel=1e-5)
    assert float(out["dec_loss"]) == pytest.approx(0.01 * float(out["llike"]) + float(out["g_loss"]), rel=1e-4)
    if gan == "gan":
        # Cross-entropies are positive; probabilities in (0, 1).
        assert float(out["d_loss"]) > 0 and float(out["g_loss"]) > 0
        assert 0 < float(out["d_real"]) < 1 and 0 < float(out["d_fake"]) < 1
    # Identical inputs have zero feature error.
    f1, f2 = model.discriminate(x)[1], model.discriminate(tf.identity(x))[1]
    assert float(tf.reduce_sum(tf.square(f1 - f2))) == 0.0


def test_one_step_trains_each_part_with_its_own_optimizer(rng):
    model = build_vaegan(8, 0.5, "gan", 0.01, 0.0)
    opts = model.compile_training(1e-3)
    enc, dec, dis = model.variable_groups()
    # The three groups partition every trainable weight.
    ids = [id(v) for v in enc + dec + dis]
    assert len(ids) == len(set(ids)) == len(model.trainable_variables)
    before = [[v.numpy().copy() for v in g] for g in (enc, dec, dis)]
    logs = model.train_batch(frames(rng, 8))
    assert set(logs) >= {"loss", "dec_loss", "d_loss", "llike", "r_loss", "kl"}
    for group, old in zip((enc, dec, dis), before):
        assert any(not np.array_equal(v.numpy(), o) for v, o in zip(group, old))
    assert len(opts.pairs) == 3 and all(int(o.iterations.numpy()) == 1 for o, _ in opts.pairs)


def test_to_vae_keeps_encoder_and_decoder(rng):
    model = build_vaegan(8, 0.5, "gan", 0.01, 0.0)
    vae = model.to_vae()
    x = tf.constant(frames(rng), tf.float32) / 255.0
    np.testing.assert_array_equal(model.encode(x)[0].numpy(), vae.encode(x)[0].numpy())
    z = tf.constant(rng.normal(size=(3, 8)), tf.float32)
    np.testing.assert_array_equal(model.decode(z).numpy(), vae.decode(z).numpy())


def test_checkpoint_resumes_all_three_optimizers_exactly(rng, tmp_path):
    batches = [frames(rng, 4) for _ in range(3)]

    def fresh():
        tf.keras.utils.set_random_seed(0)
        m = build_vaegan(8, 0.5, "gan", 0.01, 0.0)
        return m, m.compile_training(1e-3)

    a, opts_a = fresh()
    a.train_batch(batches[0])
    save_checkpoint(tmp_path / "c.npz", a, opts_a, {"settings": {"x": 1}})
    for b in batches[1:]:
        a.seed_gen.state.assign(np.array([0, 1], dtype=a.seed_gen.state.dtype))
        a.train_batch(b)
    b_model, opts_b = fresh()
    load_checkpoint(tmp_path / "c.npz", b_model, opts_b, {"x": 1}, "rerun")
    for b in batches[1:]:
        b_model.seed_gen.state.assign(np.array([0, 1], dtype=b_model.seed_gen.state.dtype))
        b_model.train_batch(b)
    for va, vb in zip(a.get_weights(), b_model.get_weights()):
        np.testing.assert_array_equal(va, vb)


def test_non_finite_losses_are_caught(rng):
    model = build_vaegan(8, 0.5, "gan", 0.01, 0.0)
    model.compile_training(1e-3)
    model.dense_mu.kernel.assign(tf.fill(model.dense_mu.kernel.shape, np.nan))
    with pytest.raises(FloatingPointError, match="non-finite"):
        model.train_batch(frames(rng, 4))


def test_toy_vaegan_reconstructions_land_on_the_data():
    from worldmodels.experiments.toy_vaegan import run

    result = run(steps=1500, seed=0, n_test=400)
    # The VAE averages the curve away (between the modes); the VAE-GAN lands on the data.
    assert result["vaegan_distance"] < 0.5 * result["vae_distance"], result
    assert result["vae_distance"] > 0.15


@pytest.mark.slow
def test_tiny_pipeline_with_a_vaegan(scripts, tmp_path):
    """Stages 1-5 with --model vaegan: V's config says so, later stages run unchanged, a rerun resumes,
    and a checkpoint of the other GAN kind is refused."""
    import json

    data = tmp_path / "carracing"
    scripts.run(scripts.names[0], data)
    scripts.run(scripts.names[1], data, "--model", "vaegan")
    cfg = json.loads((data / "vision" / "config.json").read_text())
    assert cfg["kind"] == "vaegan" and cfg["gan"] == "gan" and cfg["gamma"] == 1.0
    rows = (data / "vision" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and {"llike", "d_loss", "g_loss", "heldout_llike"} <= set(rows[0].split(","))
    for s in scripts.names[2:]:
        scripts.run(s, data)
    ev = json.loads((data / "controller" / "eval.json").read_text())
    assert len(ev["real"]["scores"]) == 2
    # Rerunning stage 2 finds the finished checkpoint and does not train again.
    before = (data / "vision" / "encoder.npz").read_bytes()
    scripts.run(scripts.names[1], data, "--model", "vaegan")
    assert (data / "vision" / "encoder.npz").read_bytes() == before
    p = scripts.run(scripts.names[1], data, "--model", "vaegan", "--gan", "wgan-gp", check=False)
    assert p.returncode != 0 and "other settings" in p.stderr and "gan" in p.stderr


@pytest.mark.slow
def test_compare_vision_writes_the_table(scripts, tmp_path):
    """compare_vision on two tiny runs sharing rollouts: the table, the grid and sane figures."""
    import json

    from worldmodels.experiments.compare_vision import main

    vae_dir, gan_dir = tmp_path / "vae", tmp_path / "vaegan"
    scripts.run(scripts.names[0], vae_dir)
    scripts.run(scripts.names[1], vae_dir)
    gan_dir.mkdir()
    (gan_dir / "rollouts").symlink_to(vae_dir / "rollouts")
    scripts.run(scripts.names[1], gan_dir, "--model", "vaegan", "--gan", "wgan-gp")
    assert main(["--env", "carracing", "--vae-dir", str(vae_dir), "--vaegan-dir", str(gan_dir), "--frames", "16"]) == 0
    res = json.loads((gan_dir / "compare_vision.json").read_text())
    for kind in ("vae", "vaegan"):
        r = res["runs"][kind]
        assert 0 < r["pixel_mse"] < 1 and -1 <= r["ssim"] <= 1 and r["sharpness_ratio"] > 0
        assert "score" not in r  # no controller trained in these runs
    md = (gan_dir / "compare_vision.md").read_text()
    assert "| VAE-GAN" in md and "not trained" in md
    assert (gan_dir / "compare_vision.png").stat().st_size > 1000


def test_sharpness_ratio_ranks_blur_below_one():
    from worldmodels.experiments.compare_vision import laplacian_variance

    rng = np.random.default_rng(0)
    sharp = rng.uniform(size=(4, 16, 16, 3))
    blurred = (sharp + np.roll(sharp, 1, 1) + np.roll(sharp, 1, 2) + np.roll(sharp, (1, 1), (1, 2))) / 4
    assert laplacian_variance(blurred) < 0.5 * laplacian_variance(sharp)
    assert laplacian_variance(np.full((2, 8, 8, 3), 0.3)) == 0.0


def test_a_diverged_epoch_is_rolled_back_with_halved_learning_rates(fake_rollout, tmp_path, rng, monkeypatch):
    """An epoch whose held-out loss blows up is undone: back to the last checkpoint, learning rates
    halved (and kept in the checkpoint), the epoch redone; the finished run has every epoch once."""
    import json

    from worldmodels.config import Run, make_stage_config
    from worldmodels.io.data import save_rollout
    from worldmodels.models.vaegan import ConvVAEGAN
    from worldmodels.stages.train_vae import diverged, train_vae

    assert diverged({"heldout_loss": 100.0}, [{"heldout_loss": 20.0}]) and not diverged({"loss": 50.0}, [])
    assert diverged({"heldout_loss": float("nan")}, []) and not diverged({"heldout_loss": 50.0}, [{"heldout_loss": 20}])
    for i in range(3):
        save_rollout(tmp_path / "rollouts" / f"s0_e{i:06d}.npz", *fake_rollout(rng, T=40))
    real = ConvVAEGAN.heldout_metrics
    calls = []

    def blow_up_once(self, x):
        out = real(self, x)
        calls.append(1)
        return {**out, "loss": out["loss"] * 100} if len(calls) == 2 else out  # epoch 2, first try

    monkeypatch.setattr(ConvVAEGAN, "heldout_metrics", blow_up_once)
    cfg = make_stage_config("vision", "carracing", "tiny", {"model": "vaegan", "epochs": 3})
    train_vae(Run("carracing", "tiny", tmp_path, 0, 1), cfg)
    assert len(calls) == 4  # epochs 1, 2 (diverged), 2 again, 3
    with np.load(tmp_path / "vision" / "checkpoint.npz") as z:
        meta = json.loads(str(z["meta"]))
    assert meta["epoch"] == 3 and meta["lr_scale"] == 0.5 and [r["epoch"] for r in meta["rollbacks"]] == [2]
    assert len((tmp_path / "vision" / "metrics.csv").read_text().splitlines()) == 4
