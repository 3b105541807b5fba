"""Stages 2 and 4, and stage 5's CMA-ES, resume from their checkpoints to the same result as an
uninterrupted run."""

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


def test_cmaes_resumed_equals_uninterrupted_at_the_papers_size(tmp_path):
    """At the paper's 867 parameters cma also draws from numpy's global RNG apart from its sampler; a
    search resumed from its pickle left the uninterrupted one two generations later until the
    sampler was pointed back at the global RNG (the tiny preset's small controller never showed it)."""
    from worldmodels.runtime.evolution import run_cmaes

    target = np.linspace(-0.5, 0.5, 867)

    def evaluate(solutions, gen):
        return np.array([-np.sum((np.asarray(x) - target) ** 2) + np.sin(np.sum(x)) for x in solutions])

    def search(state_path, generations):
        return run_cmaes(867, generations, 16, 0.1, 0, state_path, {"test": 1}, evaluate)

    whole = search(tmp_path / "whole.pkl", 6)
    search(tmp_path / "resumed.pkl", 2)
    np.random.seed(12345)  # a fresh process's global RNG is whatever it is: the checkpoint restores it
    resumed = search(tmp_path / "resumed.pkl", 6)
    assert [r["reward_mean"] for r in resumed["history"]] == [r["reward_mean"] for r in whole["history"]]
    np.testing.assert_array_equal(resumed["es"].mean, whole["es"].mean)
