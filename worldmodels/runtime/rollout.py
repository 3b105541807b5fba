"""Worker-side episode runners: the agent (numpy V, M, C) in a real environment.

Imported by spawned worker processes: nothing here imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worldmodels.io.artifacts import fault_point
from worldmodels.models.numpy_agent import Agent, NumpyEncoder, NumpyMDNRNN, load_npz, one_blas_thread

_WORKER: dict[str, Any] = {}
"""Per-process cache (env, models), filled once by init_worker so tasks only carry parameters."""


def init_worker(env_name: str, vision_dir: str, memory_dir: str, inputs: str, fast_env: bool) -> None:
    """Load V and M (numpy) and build the env once per worker process."""
    from worldmodels.envs import make_env
    from worldmodels.envs.registry import get_spec

    spec = get_spec(env_name)
    _WORKER.clear()
    _WORKER.update(
        spec=spec,
        inputs=inputs,
        fast_env=fast_env,
        env_name=env_name,
        envs={},
        encoder=NumpyEncoder(load_npz(Path(vision_dir) / "encoder.npz")),
        rnn=NumpyMDNRNN(load_npz(Path(memory_dir) / "rnn.npz")),
        make_env=make_env,
    )


def _env(max_steps: int):
    envs = _WORKER["envs"]
    if max_steps not in envs:
        envs[max_steps] = _WORKER["make_env"](_WORKER["env_name"], max_steps=max_steps, fast=_WORKER["fast_env"])
    return envs[max_steps]


def run_episode(
    env,
    agent: Agent,
    env_seed: int,
    patience: int = 0,
    step_penalty: float = 0.0,
    record: bool = False,
    curiosity: float = 0.0,
) -> tuple[float, int, dict | None]:
    """One episode of `agent` in `env` seeded `env_seed`: (total reward, steps, trace if record).

    patience > 0 stops a hopeless training episode early: after `patience` steps in a row without a
    positive reward (off the track, stalled), the episode ends and the rest of it is charged
    `step_penalty` per step, what the env would have charged had nothing more been gained. Scores
    reported as results never use it, nor the curiosity bonus (curiosity x M's negative
    log-likelihood of each z it sees, given its prediction a step earlier).
    """
    with one_blas_thread():
        obs, _ = env.reset(seed=int(env_seed))
        agent.reset(1)
        agent.track_surprise = curiosity > 0
        total, steps, done, idle = 0.0, 0, False, 0
        trace = {"obs": [], "action": [], "reward": [], "terminated": [], "truncated": []} if record else None
        while not done:
            action = agent.act(obs[None])[0]
            if curiosity:
                total += curiosity * float(agent.surprise[0])
            if record:
                trace["obs"].append(obs)
                trace["action"].append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            steps += 1
            done = terminated or truncated
            if record:
                trace["reward"].append(reward)
                trace["terminated"].append(terminated)
                trace["truncated"].append(truncated)
            idle = 0 if reward > 0 else idle + 1
            if patience and idle >= patience and not done:
                total += step_penalty * (env.spec.max_episode_steps - steps)
                break
    return total, steps, trace


def evaluate_task(task: tuple) -> tuple[float, int]:
    """(controller params, env seed, max steps, patience[, curiosity]) -> (total reward, steps), in a worker."""
    params, env_seed, max_steps, patience = task[:4]
    curiosity = task[4] if len(task) > 4 else 0.0
    fault_point("episode")
    w = _WORKER
    agent = Agent(w["encoder"], w["rnn"], params, w["inputs"], w["spec"].map_actions, w["spec"].controller_outputs)
    total, steps, _ = run_episode(
        _env(max_steps), agent, env_seed, patience, w["spec"].step_penalty, curiosity=curiosity
    )
    return total, steps


def init_random_worker(env_name: str, fast_env: bool) -> None:
    """Worker set-up for the uniform random policy (the baseline): just the env."""
    from worldmodels.envs import make_env
    from worldmodels.envs.registry import get_spec

    _WORKER.clear()
    _WORKER.update(spec=get_spec(env_name), env_name=env_name, fast_env=fast_env, envs={}, make_env=make_env)


def random_policy_task(task: tuple[int, int]) -> tuple[float, int]:
    """(env seed, max steps) -> (total reward, steps) of uniform random actions, in a worker."""
    env_seed, max_steps = task
    env = _env(max_steps)
    env.reset(seed=int(env_seed))
    env.action_space.seed(int(env_seed))
    total, steps, done = 0.0, 0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += float(reward)
        steps += 1
        done = terminated or truncated
    return total, steps
