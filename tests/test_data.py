"""Rollout and series formats, streaming readers, bad inputs."""

import numpy as np
import pytest

from worldmodels.io.artifacts import StageError, atomic_path
from worldmodels.io.data import (
    load_rollout,
    open_series,
    reference_shuffled_batches,
    rollout_files,
    save_rollout,
    shuffled_batches,
    split_heldout,
    write_series,
)


def test_rollout_round_trip(fake_rollout, tmp_path, rng):
    arrays = fake_rollout(rng, T=17)
    p = tmp_path / "ep.npz"
    save_rollout(p, *arrays)
    back = load_rollout(p)
    for key, a in zip(("obs", "action", "reward", "terminated", "truncated"), arrays):
        np.testing.assert_array_equal(back[key], a)
        assert back[key].dtype == a.dtype
    assert not list(tmp_path.glob(".tmp*"))  # no temporary left behind


def test_save_rejects_bad_shapes(fake_rollout, tmp_path, rng):
    obs, action, reward, term, trunc = fake_rollout(rng, T=5)
    with pytest.raises(ValueError, match="obs shape"):
        save_rollout(tmp_path / "a.npz", obs[:, :32], action, reward, term, trunc)
    with pytest.raises(ValueError, match="reward has 4 steps"):
        save_rollout(tmp_path / "b.npz", obs, action, reward[:4], term, trunc)
    assert not list(tmp_path.iterdir())


def test_corrupt_rollout_is_named(fake_rollout, tmp_path, rng):
    p = tmp_path / "bad.npz"
    save_rollout(p, *fake_rollout(rng, T=5))
    p.write_bytes(p.read_bytes()[:200])  # truncated file
    with pytest.raises(StageError, match="bad.npz.*corrupt"):
        load_rollout(p)


def test_missing_key_and_wrong_dtype_are_named(fake_rollout, tmp_path, rng):
    obs, action, reward, term, trunc = fake_rollout(rng, T=5)
    np.savez(tmp_path / "nokey.npz", obs=obs, action=action)
    with pytest.raises(StageError, match="nokey.npz: missing keys"):
        load_rollout(tmp_path / "nokey.npz")
    np.savez(
        tmp_path / "dtype.npz",
        obs=obs.astype(np.float32),
        action=action,
        reward=reward,
        terminated=term,
        truncated=trunc,
    )
    with pytest.raises(StageError, match="dtype.npz: obs dtype float32"):
        load_rollout(tmp_path / "dtype.npz")


def test_empty_rollout_dir_says_what_to_run(tmp_path):
    with pytest.raises(StageError, match="no rollouts.*01_generate_data.py"):
        rollout_files(tmp_path / "rollouts")


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_shuffled_batches_cover_every_frame_once_and_are_deterministic(fake_rollout, tmp_path, rng):
    files = []
    for i in range(4):
        obs, *rest = fake_rollout(rng, T=13)
        obs[:, 0, 0, 0] = np.arange(13) + 13 * i  # tag each frame
        obs[:, 0, 0, 1] = 0
        p = tmp_path / f"e{i}.npz"
        save_rollout(p, obs, *rest)
        files.append(p)
    batches = list(shuffled_batches(files, batch_size=5, buffer_size=7, seed=1, epoch=0))
    tags = np.concatenate([b[:, 0, 0, 0] for b in batches])
    assert sorted(tags.tolist()) == list(range(52))
    assert all(len(b) == 5 for b in batches[:-1])
    again = np.concatenate([b[:, 0, 0, 0] for b in shuffled_batches(files, 5, 7, seed=1, epoch=0)])
    np.testing.assert_array_equal(tags, again)
    other = np.concatenate([b[:, 0, 0, 0] for b in shuffled_batches(files, 5, 7, seed=1, epoch=1)])
    assert not np.array_equal(tags, other)
    capped = list(shuffled_batches(files, 5, 7, seed=1, epoch=0, max_frames=10))
    assert sum(len(b) for b in capped) == 10


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize(
    "lengths,batch,buffer,max_frames",
    [([13, 40, 7, 25], 5, 7, 0), ([13, 40, 7, 25], 8, 64, 0), ([30, 30, 30], 16, 10, 33), ([3, 2], 4, 100, 0)],
)
def test_shuffled_batches_are_the_frame_by_frame_shuffle(
    fake_rollout, tmp_path, rng, lengths, batch, buffer, max_frames, threads
):
    """A whole episode's swaps at once, files read ahead in threads: the same batches, bit for bit, as
    swapping frame by frame (slots drawn twice within an episode included), capped or not."""
    files = []
    for i, T in enumerate(lengths):
        obs, *rest = fake_rollout(rng, T=T)
        p = tmp_path / f"e{i}.npz"
        save_rollout(p, obs, *rest)
        files.append(p)
    for epoch in (0, 1):
        ours = list(shuffled_batches(files, batch, buffer, 3, epoch, max_frames, threads=threads))
        ref = list(reference_shuffled_batches(files, batch, buffer, 3, epoch, max_frames))
        assert len(ours) == len(ref) and all(np.array_equal(a, b) for a, b in zip(ours, ref))


def test_a_bad_file_read_ahead_is_named_in_order(fake_rollout, tmp_path, rng):
    files = []
    for i in range(5):
        p = tmp_path / f"e{i}.npz"
        save_rollout(p, *fake_rollout(rng, T=10))
        files.append(p)
    files[3].write_bytes(b"not a zip")
    with pytest.raises(StageError, match="e3.npz"):
        for _ in shuffled_batches(files, 4, 8, 0, 0, threads=3):
            pass


def test_split_heldout_keeps_one_for_training(tmp_path):
    files = [tmp_path / f"{i}" for i in range(3)]
    assert split_heldout(files, 1) == (files[:2], files[2:])
    assert split_heldout(files, 5) == (files[:1], files[1:])
    assert split_heldout(files[:1], 2) == (files[:1], [])


def test_series_write_and_read(tmp_path, rng):
    parts = []
    lengths = [5, 3, 8]
    for i, n in enumerate(lengths):
        p = tmp_path / f"p{i}.npz"
        np.savez(
            p,
            mu=np.full((n, 4), i, np.float32),
            logvar=np.zeros((n, 4), np.float32),
            action=np.zeros((n, 3), np.float32),
            reward=np.ones(n, np.float32),
            terminated=np.zeros(n, bool),
        )
        parts.append(p)
    path = tmp_path / "series" / "series.h5"
    n = write_series(path, parts, {"fingerprint": "abc"})
    assert n == 16
    with open_series(path, "python 03_generate_rnn_data.py") as f:
        np.testing.assert_array_equal(f["episode_starts"][:], [0, 5, 8, 16])
        assert f["mu"].shape == (16, 4) and f["mu"].dtype == np.float32
        np.testing.assert_array_equal(f["mu"][5:8, 0], [1, 1, 1])
        assert f.attrs["fingerprint"] == "abc"


def test_series_missing_says_what_to_run(tmp_path):
    with pytest.raises(StageError, match="03_generate_rnn_data"):
        open_series(tmp_path / "series.h5", "python 03_generate_rnn_data.py")


def test_rollout_files_checks_every_header_up_front(fake_rollout, tmp_path, rng):
    d = tmp_path / "rollouts"
    save_rollout(d / "a.npz", *fake_rollout(rng, T=5))
    save_rollout(d / "b.npz", *fake_rollout(rng, T=5))
    assert [f.name for f in rollout_files(d)] == ["a.npz", "b.npz"]
    (d / "b.npz").write_bytes((d / "b.npz").read_bytes()[:-100])  # truncated: central directory lost
    with pytest.raises(StageError, match="b.npz is corrupt"):
        rollout_files(d)
    obs, action, reward, term, trunc = fake_rollout(rng, T=5)
    np.savez(d / "b.npz", obs=obs, action=action[:4], reward=reward, terminated=term, truncated=trunc)
    with pytest.raises(StageError, match="b.npz: action has shape"):
        rollout_files(d)


def test_prefetch_keeps_order_raises_in_place_and_stops_when_closed():
    from worldmodels.io.data import prefetch

    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield from range(3)
        raise StageError("rollout e3.npz is corrupt")

    got = []
    with pytest.raises(StageError, match="e3.npz"):
        for x in prefetch(failing()):
            got.append(x)
    assert got == [0, 1, 2]  # everything before the error, in order

    closed = []

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    gen = prefetch(endless(), depth=2)
    assert [next(gen) for _ in range(5)] == [0, 1, 2, 3, 4]
    gen.close()  # the consumer stops early (an epoch capped, a kill): the producer stops and closes
    assert closed == [True]
    import threading

    assert not [t for t in threading.enumerate() if t.name == "prefetch"]


def test_prefetch_finalized_in_another_thread_does_not_wait_on_the_producer():
    """A prefetch generator the garbage collector finalizes in some other thread (a file loader, say)
    must not wait there for the producer: the producer may be waiting for that very thread. Here the
    producer's next item waits for an event the closing thread sets only after close() returns."""
    import threading

    from worldmodels.io.data import prefetch

    release, closed = threading.Event(), []

    def items():
        try:
            yield 0
            release.wait()  # the producer is blocked on the thread that finalizes the generator
            yield 1
        finally:
            closed.append(True)

    gen = prefetch(items(), depth=1)
    assert next(gen) == 0

    def finalize():
        gen.close()
        release.set()

    other = threading.Thread(target=finalize)
    other.start()
    other.join(timeout=10)
    hung = other.is_alive()
    release.set()  # unblock everything whatever happened, so a failure leaves no thread behind
    assert not hung, "closing from another thread waited on the producer"
    for t in threading.enumerate():
        if t.name == "prefetch":
            t.join(timeout=10)
    assert closed == [True]  # the producer still stopped and closed its items
