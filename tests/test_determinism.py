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


def test_a_rollout_holds_the_frames_its_actions_made(tmp_path, tiny_run):
    """Replaying a collected episode's actions in a fresh env on its seed gives back every recorded
    frame (the one each action was chosen on), reward and end flag: for the exploration policy and for
    a trained agent's episodes (K at a time)."""
    from worldmodels.envs.carracing import make_carracing
    from worldmodels.io.seeding import train_seed

    def replays(rollouts):
        for path in sorted(rollouts.glob("*.npz")):
            r = load_rollout(path)
            index = int(path.stem.split("_e")[1])
            env = make_carracing(max_steps=40)
            obs, _ = env.reset(seed=train_seed(0, index))
            for t, action in enumerate(r["action"]):
                np.testing.assert_array_equal(obs, r["obs"][t], err_msg=f"{path.name}: frame {t}")
                obs, reward, terminated, truncated, _ = env.step(action)
                assert (reward, terminated, truncated) == (r["reward"][t], r["terminated"][t], r["truncated"][t])
            assert not np.array_equal(r["obs"][0], r["obs"][-1])  # the car moved: not one frame repeated
            env.close()

    replays(collect(tmp_path / "pursuit", 1))
    agent = {"episodes": 3, "max_steps": 40, "policy": "controller", "agent_dir": str(tiny_run), "explore": 0.3}
    cfg = make_stage_config("collect", "carracing", "tiny", agent)
    replays(generate_data(Run("carracing", "tiny", tmp_path / "agent", 0, 1, envs_per_worker=3), cfg))
