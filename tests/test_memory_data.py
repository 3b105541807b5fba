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


def _coverage(f, episodes, seq_len, windows, draws, lengths):
    """How many sampled windows held each (episode, step), over `draws` batches of 16."""
    counts = [np.zeros(n) for n in lengths]
    sampler = SeriesSampler(f, np.array(episodes), seq_len=seq_len, windows=windows)
    for s in range(draws):
        b = sampler.batch(np.random.default_rng(s), 16)
        for k in range(16):
            n = int(b["mask"][k].sum())
            ep, first = int(b["mu"][k, 0, 1]), int(b["mu"][k, 0, 0])
            counts[ep][first : first + n] += 1
            np.testing.assert_array_equal(b["action"][k, :n, 0], np.arange(first, first + n))  # consecutive
            assert b["terminated"][k, :n].sum() == (first + n == lengths[ep])  # only an episode's last step
    return counts


def test_all_steps_windows_cover_every_step_alike_and_inside_windows_starve_the_last(tmp_path):
    lengths = [40]
    path = make_series(tmp_path, lengths)
    with h5py.File(path, "r") as f:
        inside = _coverage(f, [0], 10, "inside", 400, lengths)[0]
        every = _coverage(f, [0], 10, "all-steps", 400, lengths)[0]
    # inside: the terminated step is in about 1/10 as many windows as a middle step
    assert inside[-1] < 0.2 * inside[10:30].mean()
    # all-steps: each step in L of the T+L-1 possible windows, 16 * 400 * 10 / 49 = 1306 expected
    expected = 16 * 400 * 10 / 49
    assert np.all(np.abs(every - expected) < 0.15 * expected), (every.min(), every.max(), expected)


def test_all_steps_windows_start_at_the_episode_start_or_inside_it(tmp_path):
    lengths = [5, 30]
    path = make_series(tmp_path, lengths)
    with h5py.File(path, "r") as f:
        counts = _coverage(f, [0, 1], 8, "all-steps", 50, lengths)
    assert all(c.min() > 0 for c in counts)  # the short episode and the long one's ends are sampled


def test_unknown_windows_is_refused(tmp_path):
    import pytest

    path = make_series(tmp_path, [5])
    with h5py.File(path, "r") as f, pytest.raises(ValueError, match="windows"):
        SeriesSampler(f, np.array([0]), seq_len=4, windows="edges")
