"""Iterative training (issue 9): M's next-action head, the curiosity bonus, collection with a trained
controller, and a tiny two-round run that resumes."""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from worldmodels.models.memory.mdnrnn import build_mdnrnn, export_rnn, mdn_nll, split_mixture
from worldmodels.models.numpy_agent import Agent, NumpyMDNRNN, mixture_nll


def test_numpy_mixture_nll_equals_the_training_loss(rng):
    m = build_mdnrnn(4, 2, 16, 3)
    x = rng.normal(size=(5, 1, 6)).astype(np.float32)
    mix, *_ = m(tf.constant(x))
    z = rng.normal(size=(5, 4)).astype(np.float32)
    logmix, mean, logstd = split_mixture(mix, 4, 3)
    keras_nll = tf.reduce_mean(mdn_nll(tf.constant(z)[:, None], logmix, mean, logstd), axis=-1)[:, 0].numpy()
    np.testing.assert_allclose(mixture_nll(mix.numpy()[:, 0], z, 3), keras_nll, rtol=1e-4, atol=1e-5)


def test_next_action_head_adds_its_weighted_loss_and_exports(rng):
    batch = {
        "mu": rng.normal(size=(3, 9, 4)).astype(np.float32),
        "logvar": np.full((3, 9, 4), -4.0, np.float32),
        "action": rng.uniform(-1, 1, size=(3, 8, 2)).astype(np.float32),
        "reward": np.zeros((3, 8), np.float32),
        "terminated": np.zeros((3, 8), np.float32),
        "mask": np.ones((3, 8), np.float32),
        "zmask": np.ones((3, 8), np.float32),
    }
    m = build_mdnrnn(4, 2, 16, 3, predict_action=True, action_weight=2.5)
    out = {k: float(v) for k, v in m.compute_losses(batch, training=False).items()}
    assert out["action_mse"] > 0
    assert out["loss"] == pytest.approx(
        out["z_nll"] + out["reward_mse"] + out["done_bce"] + 2.5 * out["action_mse"], rel=1e-5
    )
    w = export_rnn(m)
    assert w["action_w"].shape == (16, 2) and w["action_b"].shape == (2,)
    assert "action_w" not in export_rnn(build_mdnrnn(4, 2, 16, 3))


class _IdentityEncoder:
    """Stands in for V: the 'frames' are already z."""

    z_size = 2

    def __call__(self, frames):
        return frames.astype(np.float32), np.zeros_like(frames, np.float32)


def _sequences(rng, n, T, novel=False):
    z = np.zeros((n, T + 1, 2), np.float32)
    a = rng.uniform(-1, 1, size=(n, T, 1)).astype(np.float32)
    z[:, 0] = rng.normal(0, 0.5, size=(n, 2))
    for t in range(T):
        nxt = 0.8 * z[:, t] + 0.5 * a[:, t]
        z[:, t + 1] = (-nxt + 1.0 if novel else nxt) + rng.normal(0, 0.05, size=(n, 2))
    return z, a


def test_curiosity_bonus_is_larger_on_transitions_m_has_not_learned(rng):
    """Train a small M on one dynamics; the Agent's surprise (the curiosity bonus) is far higher on
    transitions of another dynamics than on held-out transitions of the one it learned."""
    tf.keras.utils.set_random_seed(0)
    m = build_mdnrnn(2, 1, 32, 2)
    m.compile(optimizer=tf.keras.optimizers.Adam(3e-3))
    for _ in range(300):
        z, a = _sequences(rng, 32, 20)
        m.train_on_batch(
            {
                "mu": z,
                "logvar": np.full(z.shape, -10.0, np.float32),
                "action": a,
                "reward": np.zeros((32, 20), np.float32),
                "terminated": np.zeros((32, 20), np.float32),
                "mask": np.ones((32, 20), np.float32),
                "zmask": np.ones((32, 20), np.float32),
            }
        )
    rnn = NumpyMDNRNN(export_rnn(m))
    agent = Agent(_IdentityEncoder(), rnn, np.zeros(2 * 1 + 1, np.float32), "z", lambda x: x, 1)
    agent.track_surprise = True

    def mean_surprise(z, a):
        agent.reset(len(z))
        out = []
        for t in range(a.shape[1] + 1):
            agent.act(z[:, t], a[:, t] if t < a.shape[1] else np.zeros_like(a[:, 0]))
            if t > 0:
                out.append(agent.surprise)
        return float(np.mean(out))

    familiar = mean_surprise(*_sequences(rng, 16, 20))
    novel = mean_surprise(*_sequences(rng, 16, 20, novel=True))
    assert novel > familiar + 1.0, (familiar, novel)


def _iterate(scripts, data_dir, rounds):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "worldmodels.tools.iterate", "--env", "doom", "--preset", "tiny", "--data-dir"]
    cmd += [str(data_dir), "--rounds", str(rounds), "--workers", "2", "--curiosity", "0.01", "--predict-action"]
    p = scripts.run_cmd(cmd, env, timeout=900)
    assert p.returncode == 0, p.stderr[-4000:]
    return p


@pytest.mark.slow
def test_two_rounds_collect_with_the_controller_and_resume(scripts, tmp_path):
    _iterate(scripts, tmp_path, 1)
    root = tmp_path / "rounds"
    best0 = (root / "0" / "controller" / "best.npz").stat().st_mtime_ns
    _iterate(scripts, tmp_path, 2)  # round 0 is finished: skipped; round 1 runs
    assert (root / "0" / "controller" / "best.npz").stat().st_mtime_ns == best0
    manifest = json.loads((root / "1" / "rollouts" / "manifest.json").read_text())
    assert manifest["collect"]["policy"] == "controller" and manifest["collect"]["agent_dir"].endswith("rounds/0")
    own = sorted((root / "1" / "rollouts").glob("s1_e*.npz"))
    linked = sorted((root / "1" / "rollouts").glob("s0_e*.npz"))
    assert len(own) == 4 and len(linked) == 4 and all(f.is_symlink() for f in linked)
    assert (root / "1" / "vision").is_symlink()  # V is round 0's
    reused = list((root / "1" / "series" / "parts").rglob("s0_e*.npz"))  # so are its encodings
    assert len(reused) == 4 and all(p.is_symlink() and p.exists() for p in reused)
    mem = json.loads((root / "1" / "memory" / "config.json").read_text())
    assert mem["config"]["predict_action"] is True
    with open(root / "rounds.csv") as f:
        rows = f.read().splitlines()
    assert len(rows) == 3 and rows[2].split(",")[1] == "controller"
    # A rerun of a finished run does nothing.
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.npz") if not p.is_symlink()}
    _iterate(scripts, tmp_path, 2)
    assert before == {p: p.stat().st_mtime_ns for p in root.rglob("*.npz") if not p.is_symlink()}

    # A round ships like any run: its model card carries the round's stage times and the history.
    from worldmodels.tools.export_pretrained import main as export_main

    out = tmp_path / "shipped"
    assert export_main(["--data-dir", str(root / "1"), "--out", str(out), "--command", "iterate --rounds 2"]) == 0
    card = (out / "MODEL_CARD.md").read_text()
    assert "`iterate --rounds 2`" in card and "collect (this round)" in card
    assert "## Training history (iterative rounds)" in card and "| 1 | controller |" in card
    assert f"--data-dir {out}" in card
    for f in ("vision/encoder.npz", "vision/decoder.npz", "memory/rnn.npz", "controller/best.npz"):
        assert (out / f).exists(), f


def test_round_flags_override_the_preset_budgets(tmp_path):
    from worldmodels.cli import parse_tool
    from worldmodels.config import make_stage_config
    from worldmodels.tools.iterate import build_parser, main, round_configs

    def configs(*flags):
        run, a = parse_tool(build_parser(), ["--preset", "laptop", "--data-dir", str(tmp_path), *flags])
        return round_configs(run, a, tmp_path / "rounds", 1)

    preset = make_stage_config("memory", "doom", "laptop").steps
    assert configs()["memory"].steps == preset
    cfgs = configs("--memory-steps", str(preset + 3000), "--generations", "7")
    assert cfgs["memory"].steps == preset + 3000 and cfgs["controller"].generations == 7
    assert cfgs["collect"].policy == "controller"  # round 1 collects with round 0's C
    with pytest.raises(SystemExit) as e:
        main(["--data-dir", str(tmp_path), "--memory-steps", "-1"])
    assert e.value.code == 2
