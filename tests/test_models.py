"""V, M, C: shapes, losses against numpy references, parameter counts, numpy == Keras."""

import math

import numpy as np
import pytest
import tensorflow as tf

from worldmodels.models import controller as ctrl
from worldmodels.models.memory.mdnrnn import build_mdnrnn, export_rnn, mdn_nll, split_mixture
from worldmodels.models.numpy_agent import NumpyEncoder, NumpyMDNRNN
from worldmodels.models.vae import build_vae, export_encoder, kl_divergence


def test_vae_shapes_and_paper_param_count():
    vae = build_vae(32, 0.5)
    x = tf.random.uniform((3, 64, 64, 3))
    mu, logvar = vae.encode(x)
    assert mu.shape == (3, 32) and logvar.shape == (3, 32)
    y = vae.decode(mu)
    assert y.shape == (3, 64, 64, 3)
    assert float(tf.reduce_min(y)) >= 0.0 and float(tf.reduce_max(y)) <= 1.0  # sigmoid output
    # The paper's ConvVAE for CarRacing has 4,348,547 parameters.
    assert vae.count_params() == 4_348_547


def test_kl_is_nonnegative_and_zero_only_at_prior(rng):
    mu = rng.normal(size=(64, 8)).astype(np.float32) * 2
    logvar = rng.normal(size=(64, 8)).astype(np.float32)
    kl = kl_divergence(tf.constant(mu), tf.constant(logvar)).numpy()
    assert kl.shape == (64,)
    assert np.all(kl >= 0)
    ref = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar, axis=1)
    np.testing.assert_allclose(kl, ref, rtol=1e-5)
    assert np.allclose(kl_divergence(tf.zeros((2, 8)), tf.zeros((2, 8))).numpy(), 0.0)


def test_vae_loss_floors_kl_at_tolerance():
    vae = build_vae(4, 0.5)
    x = tf.random.uniform((2, 64, 64, 3))
    loss, r_loss, kl = vae.compute_losses(x, training=False)
    assert float(loss) == pytest.approx(float(r_loss) + max(float(kl), 0.5 * 4), rel=1e-5)


def _numpy_mdn_nll(y, logmix, mean, logstd):
    logmix = logmix - np.log(np.sum(np.exp(logmix), axis=-1, keepdims=True))
    logn = -0.5 * ((y[..., None] - mean) / np.exp(logstd)) ** 2 - logstd - 0.5 * math.log(2 * math.pi)
    return -np.log(np.sum(np.exp(logmix + logn), axis=-1))


def test_mdn_nll_matches_numpy_reference(rng):
    B, T, z, k = 2, 3, 4, 5
    out = rng.normal(size=(B, T, 3 * z * k)).astype(np.float32)
    y = rng.normal(size=(B, T, z)).astype(np.float32)
    logmix, mean, logstd = split_mixture(tf.constant(out), z, k)
    got = mdn_nll(tf.constant(y), logmix, mean, logstd).numpy()
    raw = out.reshape(B, T, z, 3 * k)
    ref = _numpy_mdn_nll(y, raw[..., :k], raw[..., k : 2 * k], raw[..., 2 * k :])
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # A single wide Gaussian: NLL of its mean is log(sigma) + log(sqrt(2 pi)).
    one = np.zeros((1, 1, 3), np.float32)
    one[..., 2] = math.log(2.0)
    lm, m, ls = split_mixture(tf.constant(one), 1, 1)
    assert mdn_nll(tf.zeros((1, 1, 1)), lm, m, ls).numpy().item() == pytest.approx(
        math.log(2.0) + 0.5 * math.log(2 * math.pi)
    )


def test_mdnrnn_shapes():
    m = build_mdnrnn(z_size=8, action_dim=3, rnn_size=16, num_mixtures=5)
    mix, reward, done, (h, c, _) = m(tf.zeros((4, 7, 11)))
    assert mix.shape == (4, 7, 3 * 8 * 5)
    assert reward.shape == (4, 7) and done.shape == (4, 7)
    assert h.shape == (4, 16) and c.shape == (4, 16)


def test_controller_param_count_is_papers_867():
    assert ctrl.param_count(32, 256, 3) == 867
    assert ctrl.param_count(32, 256, 3, "z") == 32 * 3 + 3
    w, b = ctrl.unflatten(np.arange(867, dtype=np.float32), 288, 3)
    assert w.shape == (288, 3) and b.shape == (3,)
    np.testing.assert_array_equal(ctrl.flatten(w, b), np.arange(867, dtype=np.float32))
    with pytest.raises(ValueError):
        ctrl.unflatten(np.zeros(866), 288, 3)


def test_numpy_encoder_equals_keras(rng):
    vae = build_vae(32, 0.5)
    frames = rng.integers(0, 256, size=(5, 64, 64, 3), dtype=np.uint8)
    mu_k, logvar_k = vae.encode(tf.constant(frames, tf.float32) / 255.0)
    enc = NumpyEncoder(export_encoder(vae))
    mu_n, logvar_n = enc(frames)
    np.testing.assert_allclose(mu_n, mu_k.numpy(), atol=1e-4)
    np.testing.assert_allclose(logvar_n, logvar_k.numpy(), atol=1e-4)


def test_numpy_lstm_and_heads_equal_keras(rng):
    m = build_mdnrnn(z_size=8, action_dim=3, rnn_size=32, num_mixtures=5)
    # Non-trivial weights: Keras initialises the LSTM bias to mostly zeros.
    m.set_weights([w + rng.normal(scale=0.1, size=w.shape).astype(np.float32) for w in m.get_weights()])
    x = rng.normal(size=(2, 6, 11)).astype(np.float32)
    mix_k, reward_k, done_k, _ = m(tf.constant(x))
    np_m = NumpyMDNRNN(export_rnn(m))
    state = np_m.initial_state(2)
    for t in range(6):
        state = np_m.step(x[:, t, :8], x[:, t, 8:], state)
        mix, reward, done = np_m.heads(state[0])
        np.testing.assert_allclose(mix, mix_k.numpy()[:, t], atol=1e-4)
        np.testing.assert_allclose(reward, reward_k.numpy()[:, t], atol=1e-4)
        np.testing.assert_allclose(done, done_k.numpy()[:, t], atol=1e-4)


def test_mdnrnn_dropout_acts_in_training_only(rng):
    """M trained with dropout drops units of what its heads read while training, never at inference
    (the numpy export and the dream are unchanged unless the dream asks for masks), and keeps the
    setting through its config."""
    import tensorflow as tf

    from worldmodels.models.memory.mdnrnn import MDNRNN, build_mdnrnn

    m = build_mdnrnn(4, 3, 16, 2, dropout=0.5)
    x = tf.constant(rng.normal(size=(2, 5, 7)), tf.float32)
    infer = [t.numpy() for t in m(x)[:3]]
    np.testing.assert_array_equal(infer[0], m(x)[0].numpy())  # deterministic at inference
    trained = m(x, training=True)[0].numpy()
    assert not np.allclose(trained, infer[0])
    lstm_state = m(x, training=True)[3][0].numpy()
    np.testing.assert_allclose(lstm_state, m(x)[3][0].numpy(), rtol=1e-6)  # the recurrence is untouched
    assert MDNRNN.from_config(m.get_config()).dropout == 0.5
    plain = build_mdnrnn(4, 3, 16, 2)
    plain.set_weights(m.get_weights())
    np.testing.assert_array_equal(plain(x, training=True)[0].numpy(), plain(x)[0].numpy())


def test_dropout_rates_must_be_below_one():
    from worldmodels.config import make_stage_config

    assert make_stage_config("memory", "doom", "laptop", {"dropout": 0.1}).dropout == 0.1
    for stage, field in (("memory", "dropout"), ("controller", "dream_dropout")):
        for bad in (1.0, -0.1):
            with pytest.raises(ValueError, match=field.replace("_", "-")):
                make_stage_config(stage, "doom", "laptop", {field: bad})


def test_dropout_enters_resume_settings_only_when_used(tmp_path):
    """Checkpoints and CMA-ES states made before dropout existed still resume (their settings lack it)."""
    from worldmodels.config import Run, make_stage_config
    from worldmodels.stages.train_controller import _settings as controller_settings
    from worldmodels.stages.train_rnn import _settings as memory_settings

    run = Run("doom", "laptop", tmp_path)
    plain, used = (make_stage_config("memory", "doom", "laptop", {"dropout": d}) for d in (0.0, 0.1))
    assert "dropout" not in memory_settings(run, plain, "fp") and memory_settings(run, used, "fp")["dropout"] == 0.1
    plain, used = (make_stage_config("controller", "doom", "laptop", {"dream_dropout": d}) for d in (0.0, 0.1))
    fps = {"fingerprint": "v"}, {"fingerprint": "m"}
    assert "dream_dropout" not in controller_settings(run, plain, *fps, 10)
    assert controller_settings(run, used, *fps, 10)["dream_dropout"] == 0.1
    plain, used = (make_stage_config("controller", "doom", "laptop", {"dream_done_shift": d}) for d in (0.0, 1.0))
    assert "dream_done_shift" not in controller_settings(run, plain, *fps, 10)
    assert controller_settings(run, used, *fps, 10)["dream_done_shift"] == 1.0
    with pytest.raises(ValueError, match="dream-done-shift"):
        make_stage_config("controller", "doom", "laptop", {"dream_done_shift": -0.5})


def _train_losses(build, batches, mixed: bool, compile_kwargs=None):
    """Losses of a few training steps of the model `build(mixed)` makes, from seed 0, on `batches`."""
    import keras

    keras.utils.set_random_seed(0)
    model = build(mixed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, **(compile_kwargs or {})))
    losses = []
    for batch in batches:
        model.reset_metrics()
        losses.append(float(model.train_on_batch(batch, return_dict=True)["loss"]))
    return model, losses


def test_mixed_precision_trains_v_like_float32_and_exports_float32(rng):
    """--mixed-precision (stage 2): float16 compute, float32 weights, loss scaling; over a few steps
    from the same start the losses stay within MIXED_LOSS_RTOL of float32's, and V's exported
    weights are float32."""
    from worldmodels.models.precision import MIXED_LOSS_RTOL

    frames = [rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8) for _ in range(4)]
    full, full_losses = _train_losses(lambda m: build_vae(8, 0.5, m), frames, False)
    mixed, mixed_losses = _train_losses(lambda m: build_vae(8, 0.5, m), frames, True)
    assert mixed.convs[0].compute_dtype == "float16" and full.convs[0].compute_dtype == "float32"
    assert type(mixed.optimizer).__name__ == "LossScaleOptimizer"
    np.testing.assert_allclose(mixed_losses, full_losses, rtol=MIXED_LOSS_RTOL)
    assert full_losses[-1] < full_losses[0] and mixed_losses[-1] < mixed_losses[0]  # both learn
    assert all(a.dtype == np.float32 for a in export_encoder(mixed).values())
    assert all(v.dtype == "float32" for v in mixed.trainable_variables)


def test_mixed_precision_trains_m_like_float32_and_exports_float32(rng):
    from worldmodels.models.precision import MIXED_LOSS_RTOL

    z = 8
    batches = [_m_batch(rng) for _ in range(4)]
    full, full_losses = _train_losses(lambda m: build_mdnrnn(z, 3, 16, 2, mixed_precision=m), batches, False)
    mixed, mixed_losses = _train_losses(lambda m: build_mdnrnn(z, 3, 16, 2, mixed_precision=m), batches, True)
    assert mixed.lstm.compute_dtype == "float16"
    np.testing.assert_allclose(mixed_losses, full_losses, rtol=MIXED_LOSS_RTOL)
    assert all(a.dtype == np.float32 for k, a in export_rnn(mixed).items() if k != "num_mixtures")


def test_mixed_precision_is_refused_for_the_vaegan():
    from worldmodels.config import make_stage_config

    with pytest.raises(ValueError, match="--mixed-precision"):
        make_stage_config("vision", "carracing", "tiny", {"model": "vaegan", "mixed_precision": True})
    assert make_stage_config("memory", "doom", "paper", {"mixed_precision": True}).mixed_precision


def _m_batch(rng, B=4, T=12, z=8):
    return {
        "mu": rng.normal(size=(B, T + 1, z)).astype(np.float32),
        "logvar": np.full((B, T + 1, z), -2.0, np.float32),
        "action": rng.uniform(-1, 1, (B, T, 3)).astype(np.float32),
        "reward": rng.normal(size=(B, T)).astype(np.float32),
        "terminated": np.zeros((B, T), np.float32),
        "mask": np.ones((B, T), np.float32),
        "zmask": np.ones((B, T), np.float32),
    }


def test_a_mixed_precision_checkpoint_resumes_bit_for_bit(rng, tmp_path):
    """The loss scale is optimizer state: a stage's checkpoint keeps it, so a resumed mixed-precision
    run goes on exactly as an uninterrupted one."""
    import keras

    from worldmodels.io.checkpoints import load_checkpoint, save_checkpoint

    batches = [_m_batch(rng) for _ in range(4)]

    def fresh():
        keras.utils.set_random_seed(0)
        m = build_mdnrnn(8, 3, 16, 2, mixed_precision=True)
        m.compile(optimizer=keras.optimizers.Adam(1e-3))
        return m

    def train(model, steps):
        for i in steps:
            model.seed_gen.state.assign(np.array([0, i], dtype=model.seed_gen.state.dtype))
            model.train_on_batch(batches[i])

    straight, first, resumed = fresh(), fresh(), fresh()
    train(straight, range(4))
    train(first, range(2))
    save_checkpoint(tmp_path / "c.npz", first, first.optimizer, {"settings": {}})
    load_checkpoint(tmp_path / "c.npz", resumed, resumed.optimizer, {}, "rerun")
    train(resumed, range(2, 4))
    assert all(np.array_equal(a, b) for a, b in zip(straight.get_weights(), resumed.get_weights()))
    assert type(resumed.optimizer).__name__ == "LossScaleOptimizer"


def test_numpy_decoder_equals_keras_from_both_weight_files(rng, tmp_path):
    """V's decoder in numpy (for the dream server, no TensorFlow) gives Keras' frames, read from a
    run's vae.weights.h5 (h5py) or from a bundle's float16 decoder.npz."""
    from types import SimpleNamespace

    from worldmodels.models.loading import load_decoder
    from worldmodels.models.numpy_agent import NumpyDecoder
    from worldmodels.models.vae import decode_uint8, export_decoder

    vae = build_vae(8, 0.5)
    for layer in vae.layers:  # away from the initial weights so every layer matters
        layer.set_weights([w + rng.normal(0, 0.02, w.shape).astype(np.float32) for w in layer.get_weights()])
    (tmp_path / "run" / "vision").mkdir(parents=True)
    vae.save_weights(tmp_path / "run" / "vision" / "vae.weights.h5")
    z = rng.normal(size=(5, 8)).astype(np.float32)
    want = decode_uint8(vae, z)
    run = SimpleNamespace(data_dir=tmp_path / "run", env="carracing")
    got = NumpyDecoder(load_decoder(run, {"z_size": 8}))(z)
    assert got.shape == (5, 64, 64, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    (tmp_path / "bundle" / "vision").mkdir(parents=True)
    np.savez(tmp_path / "bundle" / "vision" / "decoder.npz", **export_decoder(vae))
    bundle = SimpleNamespace(data_dir=tmp_path / "bundle", env="carracing")
    half = NumpyDecoder(load_decoder(bundle, {"z_size": 8}))(z)
    assert np.abs(half.astype(int) - want.astype(int)).max() <= 3  # float16 weights
