"""Every row of docs/bad-inputs.md: what happens on each kind of bad input."""

import errno
import json
import shutil

import numpy as np
import pytest

from worldmodels.cli import run_stage
from worldmodels.config import Run, make_stage_config
from worldmodels.io.artifacts import StageError
from worldmodels.io.data import load_rollout, save_rollout


def args_for(root, env="carracing"):
    return Run(env=env, preset="tiny", data_dir=root, seed=0, workers=1)


def test_nan_in_actions_is_refused_naming_the_file(fake_rollout, tmp_path, rng):
    obs, action, reward, term, trunc = fake_rollout(rng, T=5)
    action[2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", obs=obs, action=action, reward=reward, terminated=term, truncated=trunc)
    with pytest.raises(StageError, match="nan.npz: action or reward holds NaN"):
        load_rollout(tmp_path / "nan.npz")
    with pytest.raises(ValueError, match="NaN"):  # and the writer never writes one
        save_rollout(tmp_path / "nan2.npz", obs, action, reward, term, trunc)
    assert not (tmp_path / "nan2.npz").exists()


def test_float_frames_are_refused(fake_rollout, tmp_path, rng):
    obs, action, reward, term, trunc = fake_rollout(rng, T=5)
    np.savez(tmp_path / "f.npz", obs=obs / 255.0, action=action, reward=reward, terminated=term, truncated=trunc)
    with pytest.raises(StageError, match="f.npz: obs dtype float64"):
        load_rollout(tmp_path / "f.npz")


def test_full_disk_keeps_the_previous_artifact_and_says_so(fake_rollout, tmp_path, rng, monkeypatch, capsys):
    p = tmp_path / "ep.npz"
    save_rollout(p, *fake_rollout(rng, T=5))
    before = p.read_bytes()

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(a[0]))

    monkeypatch.setattr(np, "savez_compressed", no_space)
    with pytest.raises(OSError):
        save_rollout(p, *fake_rollout(rng, T=5))
    assert p.read_bytes() == before
    assert [q.name for q in tmp_path.iterdir()] == ["ep.npz"]  # no temporary left
    with pytest.raises(SystemExit) as e:
        run_stage(lambda: save_rollout(tmp_path / "new.npz", *fake_rollout(rng, T=5)))
    assert e.value.code == 1
    assert "disk is full" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(smooth_rollouts, tmp_path_factory):
    """A tiny trained pipeline (real stages, fake frames) to corrupt in the tests below."""
    from worldmodels.stages.encode import encode_rollouts
    from worldmodels.stages.train_rnn import train_rnn
    from worldmodels.stages.train_vae import train_vae

    root = tmp_path_factory.mktemp("trained")
    smooth_rollouts(root)
    train_vae(args_for(root), make_stage_config("vision", "carracing", "tiny", {"epochs": 1}))
    encode_rollouts(args_for(root), make_stage_config("encode", "carracing", "tiny"))
    train_rnn(args_for(root), make_stage_config("memory", "carracing", "tiny", {"steps": 10}))
    return root


def test_memory_with_another_z_size_is_refused(trained, tmp_path):
    from worldmodels.stages.train_controller import train_controller

    for d in ("rollouts", "vision", "series", "memory"):
        shutil.copytree(trained / d, tmp_path / d)
    cfg = json.loads((tmp_path / "memory" / "config.json").read_text())
    cfg["z_size"] = 32
    (tmp_path / "memory" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(StageError, match="z size 32 but V has 8.*04_train_rnn"):
        train_controller(args_for(tmp_path), make_stage_config("controller", "carracing", "tiny"))


def test_models_for_another_env_are_refused(trained, tmp_path):
    from worldmodels.stages.train_rnn import train_rnn

    for d in ("rollouts", "vision", "series"):
        shutil.copytree(trained / d, tmp_path / d)
    with pytest.raises(StageError, match="V for 'carracing', not 'doom'.*02_train_vae"):
        train_rnn(args_for(tmp_path, env="doom"), make_stage_config("memory", "doom", "tiny"))


def test_controller_for_another_env_is_refused_by_evaluate(tmp_path, capsys):
    from worldmodels.tools.evaluate import main

    (tmp_path / "controller").mkdir()
    (tmp_path / "controller" / "config.json").write_text(json.dumps({"env": "doom", "inputs": "zch"}))
    assert main(["--env", "carracing", "--model-dir", str(tmp_path), "--episodes", "1"]) == 1
    assert "controller for 'doom', not 'carracing'" in capsys.readouterr().err


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(trained, tmp_path, monkeypatch):
    import tensorflow as tf

    from worldmodels.models.vae import ConvVAE
    from worldmodels.stages.train_vae import train_vae

    shutil.copytree(trained / "rollouts", tmp_path / "rollouts")
    shutil.copytree(trained / "vision", tmp_path / "vision")
    good = (tmp_path / "vision" / "checkpoint.npz").read_bytes()

    original = ConvVAE.compute_losses

    def nan_losses(self, x, training=True):
        loss, r_loss, kl = original(self, x, training)
        nan = tf.constant(float("nan"))
        return loss * nan, r_loss * nan, kl

    monkeypatch.setattr(ConvVAE, "compute_losses", nan_losses)
    with pytest.raises(StageError, match="non-finite.*last good checkpoint"):
        train_vae(args_for(tmp_path), make_stage_config("vision", "carracing", "tiny", {"epochs": 2}))
    assert (tmp_path / "vision" / "checkpoint.npz").read_bytes() == good
