"""Stages 2 and 4 resume from their checkpoints to the same result as an uninterrupted run."""

import numpy as np
import pytest

from worldmodels.config import Run, make_stage_config
from worldmodels.io.artifacts import StageError
from worldmodels.models.numpy_agent import load_npz
from worldmodels.stages.encode import encode_rollouts
from worldmodels.stages.train_rnn import train_rnn
from worldmodels.stages.train_vae import train_vae


def assert_same_weights(a_path, b_path):
    a, b = load_npz(a_path), load_npz(b_path)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def args_for(root):
    return Run(env="carracing", preset="tiny", data_dir=root, seed=0, workers=1)


def vision_cfg(**kw):
    return make_stage_config("vision", "carracing", "tiny", {"batch_size": 16, "shuffle_buffer": 50, **kw})


@pytest.fixture(scope="module")
def straight(smooth_rollouts, tmp_path_factory):
    root = tmp_path_factory.mktemp("straight")
    smooth_rollouts(root)
    train_vae(args_for(root), vision_cfg(epochs=2))
    encode_rollouts(args_for(root), make_stage_config("encode", "carracing", "tiny"))
    train_rnn(args_for(root), make_stage_config("memory", "carracing", "tiny", {"steps": 20}))
    return root


def test_vae_resumed_equals_uninterrupted(smooth_rollouts, straight, tmp_path):
    smooth_rollouts(tmp_path)
    train_vae(args_for(tmp_path), vision_cfg(epochs=1))  # "killed" after epoch 1
    train_vae(args_for(tmp_path), vision_cfg(epochs=2))  # the rerun continues
    assert_same_weights(straight / "vision" / "encoder.npz", tmp_path / "vision" / "encoder.npz")


def test_rnn_resumed_equals_uninterrupted(straight, tmp_path):
    import shutil

    shutil.copytree(straight / "rollouts", tmp_path / "rollouts")
    shutil.copytree(straight / "vision", tmp_path / "vision")
    shutil.copytree(straight / "series", tmp_path / "series")
    train_rnn(args_for(tmp_path), make_stage_config("memory", "carracing", "tiny", {"steps": 10}))
    train_rnn(args_for(tmp_path), make_stage_config("memory", "carracing", "tiny", {"steps": 20}))
    assert_same_weights(straight / "memory" / "rnn.npz", tmp_path / "memory" / "rnn.npz")


def test_checkpoint_from_other_settings_is_refused(straight, tmp_path):
    import shutil

    shutil.copytree(straight / "rollouts", tmp_path / "rollouts")
    shutil.copytree(straight / "vision", tmp_path / "vision")
    with pytest.raises(StageError, match="other settings.*z_size"):
        train_vae(args_for(tmp_path), vision_cfg(epochs=3, z_size=4))


def test_series_from_another_vision_model_is_refused(straight, tmp_path):
    import shutil

    for d in ("rollouts", "vision", "series"):
        shutil.copytree(straight / d, tmp_path / d)
    import h5py

    with h5py.File(tmp_path / "series" / "series.h5", "r+") as f:
        f.attrs["vision_fingerprint"] = "0000000000000000"
    with pytest.raises(StageError, match="encoded by another vision model.*03_generate_rnn_data"):
        train_rnn(args_for(tmp_path), make_stage_config("memory", "carracing", "tiny"))
