"""M's training windows: padding and masks at episode ends."""

import h5py
import numpy as np

from worldmodels.io.data import SeriesSampler, write_series


def make_series(tmp_path, lengths):
    parts = []
    for i, n in enumerate(lengths):
        p = tmp_path / f"p{i}.npz"
        step = np.arange(n, dtype=np.float32)
        term = np.zeros(n, bool)
        term[-1] = True
        np.savez(
            p,
            mu=np.stack([step, np.full(n, i, np.float32)], 1),
            logvar=np.zeros((n, 2), np.float32),
            action=np.stack([step] * 3, 1),
            reward=step,
            terminated=term,
        )
        parts.append(p)
    path = tmp_path / "series.h5"
    write_series(path, parts, {})
    return path


def test_short_episode_is_padded_and_masked(tmp_path):
    path = make_series(tmp_path, [5])
    with h5py.File(path, "r") as f:
        b = SeriesSampler(f, np.array([0]), seq_len=10).batch(np.random.default_rng(0), 3)
    assert b["mu"].shape == (3, 11, 2) and b["action"].shape == (3, 10, 3)
    for k in range(3):
        np.testing.assert_array_equal(b["mask"][k], [1] * 5 + [0] * 5)
        np.testing.assert_array_equal(b["zmask"][k], [1] * 4 + [0] * 6)  # the last step has no next z
        np.testing.assert_array_equal(b["mu"][k, :5, 0], np.arange(5))
        np.testing.assert_array_equal(b["terminated"][k], [0, 0, 0, 0, 1, 0, 0, 0, 0, 0])


def test_windows_stay_inside_one_episode(tmp_path):
    path = make_series(tmp_path, [30, 12, 50])
    with h5py.File(path, "r") as f:
        sampler = SeriesSampler(f, np.array([0, 1, 2]), seq_len=8)
        for s in range(20):
            b = sampler.batch(np.random.default_rng(s), 4)
            for k in range(4):
                n = int(b["mask"][k].sum())
                nz = int(b["zmask"][k].sum()) + 1
                ep = b["mu"][k, :nz, 1]
                assert np.all(ep == ep[0])  # one episode per window
                steps = b["mu"][k, :nz, 0]
                np.testing.assert_array_equal(np.diff(steps), 1)  # consecutive steps
                np.testing.assert_array_equal(b["action"][k, :n, 0], steps[:n])  # a_t aligned with z_t
                assert n == 8
