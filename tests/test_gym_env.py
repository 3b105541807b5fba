"""`--env gym:<id>`: any gymnasium env with image observations (issue 22). Unit tests on an Atari game
(ale-py ships its games) and a MiniGrid env (RGB through render()), then the tiny pipeline end to end
on both, in the real env and in the dream."""

import json

import gymnasium as gym
import numpy as np
import pytest

from worldmodels.envs import gym_env
from worldmodels.envs.registry import get_spec

PONG = "gym:ALE/Pong-v5"
GRID = gym_env.compose_name("MiniGrid-Empty-5x5-v0", module="minigrid", obs="render")


def test_names_carry_every_option_and_round_trip():
    name = gym_env.compose_name("ALE/Pong-v5", {"frameskip": 2}, "ale_py", "render", (10, 0, 0, 0))
    assert name == 'gym:ALE/Pong-v5?{"crop":[10,0,0,0],"import":"ale_py","kwargs":{"frameskip":2},"obs":"render"}'
    env_id, options = gym_env.parse_name(name)
    assert env_id == "ALE/Pong-v5" and options["kwargs"] == {"frameskip": 2} and options["crop"] == [10, 0, 0, 0]
    assert gym_env.compose_name("ALE/Pong-v5") == PONG
    for bad in ("Pong", "gym:", 'gym:X?{"nope":1}', "gym:X?{not json", 'gym:X?{"obs":"eyes"}', 'gym:X?{"crop":[1]}'):
        with pytest.raises(ValueError):
            gym_env.parse_name(bad)


def test_an_atari_game_gives_64x64_frames_and_one_hot_actions():
    spec = get_spec(PONG)
    assert spec.action_dim == spec.controller_outputs == 6
    env = spec.make(max_steps=5)
    try:
        obs, _ = env.reset(seed=1)
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
        actions = spec.map_actions(np.array([[0.1, 2.0, -1, 0, 0, 0], [0, 0, 0, 0, 0, 3.0]]))
        assert actions.tolist() == [[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]]
        steps = 0
        truncated = terminated = False
        while not (terminated or truncated):
            obs, reward, terminated, truncated, _ = env.step(actions[0])
            steps += 1
        assert steps == 5 and truncated  # the step cap
        again, _ = env.reset(seed=1)
        first, _ = spec.make(max_steps=5).reset(seed=1)
        assert np.array_equal(again, first)  # seeded
    finally:
        env.close()
    policy = spec.policies["random-long"](np.random.default_rng(0))
    held = [policy(env).argmax() for _ in range(40)]
    assert len(set(held)) > 1 and sum(a == b for a, b in zip(held, held[1:])) > 20  # held, then changed


def test_a_minigrid_env_through_render():
    spec = get_spec(GRID)
    env = spec.make(max_steps=10)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (64, 64, 3) and obs.std() > 0
    finally:
        env.close()
    # its own observation is a dict whose one image is the 7x7 symbolic view: 'auto' takes that one
    auto = get_spec(gym_env.compose_name("MiniGrid-Empty-5x5-v0", module="minigrid")).make()
    assert auto.reset(seed=0)[0].shape == (64, 64, 3)
    auto.close()


def test_bad_ids_non_images_and_unsupported_actions_are_clear_errors():
    with pytest.raises(ValueError, match="cannot be made"):
        get_spec("gym:NoSuchGame-v9")
    with pytest.raises(ValueError, match="not an image"):
        get_spec("gym:CartPole-v1").make().reset(seed=0)
    gym.register("WorldmodelsTwoD-v0", entry_point=TwoDActions)
    with pytest.raises(ValueError, match="not supported"):
        get_spec("gym:WorldmodelsTwoD-v0")
    with pytest.raises(ValueError, match="cannot import"):
        get_spec(gym_env.compose_name("X-v0", module="no_such_module_here"))


class TwoDActions(gym.Env):
    observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = gym.spaces.Box(-1, 1, (2, 2), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros((8, 8, 3), np.uint8), {}

    def step(self, action):
        return np.zeros((8, 8, 3), np.uint8), 0.0, True, False, {}


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags",
    [
        ["--env", "gym:ALE/Pong-v5", "--max-steps", "40"],
        ["--env", "gym:MiniGrid-Empty-5x5-v0", "--import", "minigrid", "--obs", "render", "--max-steps", "40"],
    ],
    ids=["atari", "minigrid"],
)
def test_the_tiny_pipeline_on_a_gym_env_real_and_dream(scripts, tmp_path, flags):
    """Stages 1-5 on the tiny preset, C trained in the real env, then in the dream; evaluate scores
    the agent and the random policy in the real env; a stage refuses another env's inputs."""
    import os
    import sys

    data = tmp_path / "run"
    stage_flags = {"01_generate_data.py": flags, "05_train_controller.py": flags[:-2]}
    for s in scripts.names:
        scripts.run(s, data, *stage_flags.get(s, flags[:-2]))
    controller = json.loads((data / "controller" / "config.json").read_text())
    name = controller["env"]
    assert name.startswith("gym:") and json.loads((data / "vision" / "config.json").read_text())["env"] == name
    scripts.run("05_train_controller.py", data, *flags[:-2], "--in", "dream", "--name", "dreamed")
    dream = json.loads((data / "dreamed" / "eval.json").read_text())
    assert set(dream) >= {"dream", "real"}
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "TF_CPP_MIN_LOG_LEVEL": "3"}
    for policy in ("agent", "random"):
        out = tmp_path / f"{policy}.json"
        cmd = [sys.executable, "-m", "worldmodels.evaluate", *flags[:-2], "--data-dir", str(data)]
        cmd += ["--policy", policy, "--episodes", "2", "--max-steps", "30", "--out", str(out)]
        p = scripts.run_cmd(cmd, env)
        assert p.returncode == 0, p.stderr[-3000:]
        assert json.loads(out.read_text())["env"] == name
    # serve's world (the dream from the keyboard and the agent, and the real game) takes it too
    from worldmodels.tools.serve import World

    world = World(data, name)
    try:
        for view in ("dream", "real"):
            world.set_view(view)
            world.agent_drives = view == "real"
            for _ in range(3):
                world.step({"ArrowLeft"})
            assert world.steps == 3 and world.frame.shape[0] == 64
    finally:
        world.close()
    other = scripts.run("04_train_rnn.py", data, "--env", "gym:ALE/Breakout-v5", check=False)
    assert other.returncode != 0 and "gym:ALE/Breakout-v5" in other.stderr + other.stdout
