"""The same --seed and flags give bit-identical rollouts, whatever the number of workers."""

import numpy as np

from worldmodels.config import Run, make_stage_config
from worldmodels.io.data import load_rollout
from worldmodels.stages.collect import generate_data


def collect(root, workers, seed=0):
    cfg = make_stage_config("collect", "carracing", "tiny", {"episodes": 3, "max_steps": 40})
    return generate_data(Run("carracing", "tiny", root, seed=seed, workers=workers), cfg)


def test_rollouts_are_identical_with_one_or_two_workers(tmp_path):
    a, b, c = collect(tmp_path / "a", 1), collect(tmp_path / "b", 2), collect(tmp_path / "c", 1, seed=1)
    names = sorted(p.name for p in a.glob("*.npz"))
    assert names == sorted(p.name for p in b.glob("*.npz")) and len(names) == 3
    for n in names:
        x, y = load_rollout(a / n), load_rollout(b / n)
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{n}:{k}")
    # Another seed gives other episodes.
    other = load_rollout(sorted(c.glob("*.npz"))[0])
    assert not np.array_equal(other["action"], load_rollout(a / names[0])["action"])
