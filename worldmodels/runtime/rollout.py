"""Worker-side episode runners: the agent (numpy V, M, C) in a real environment.

Imported by spawned worker processes: nothing here imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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


def _env(max_steps: int, slot: int = 0):
    """The worker's env number `slot` truncated at `max_steps`, built on first use and kept."""
    envs = _WORKER["envs"]
    if (max_steps, slot) not in envs:
        envs[max_steps, slot] = _WORKER["make_env"](_WORKER["env_name"], max_steps=max_steps, fast=_WORKER["fast_env"])
    return envs[max_steps, slot]


class Slots:
    """K env slots fed from a task list, each holding one running episode: a slot whose episode ends
    takes the next task, or empties when none is left. start(slot, task index, task) starts one."""

    def __init__(self, n: int, tasks: list, start):
        self._waiting, self._start = iter(enumerate(tasks)), start
        self.episodes: list = [None] * n
        for slot in range(n):
            self.refill(slot)

    def refill(self, slot: int) -> None:
        nxt = next(self._waiting, None)
        self.episodes[slot] = None if nxt is None else self._start(slot, *nxt)

    def busy(self) -> list[int]:
        """The slots with an episode running."""
        return [i for i, e in enumerate(self.episodes) if e is not None]


class _Episode:
    """One running episode of a batch: its task, its env, and its running totals."""

    def __init__(self, index: int, task: tuple, env):
        self.index, self.env = index, env
        self.params, seed, _, self.patience = task[:4]
        self.curiosity = task[4] if len(task) > 4 else 0.0
        self.obs, _ = env.reset(seed=int(seed))
        self.total, self.steps, self.idle = 0.0, 0, 0

    def step(self, action: np.ndarray, surprise: float, step_penalty: float) -> bool:
        """Take `action`; True when the episode is over: ended by the env, or stopped for patience
        (after `patience` steps in a row without a positive reward, off the track or stalled, the rest
        of the episode is charged `step_penalty` per step, what the env would have charged had nothing
        more been gained)."""
        if self.curiosity:
            self.total += self.curiosity * surprise
        self.obs, reward, terminated, truncated, _ = self.env.step(action)
        self.total += float(reward)
        self.steps += 1
        if terminated or truncated:
            return True
        self.idle = 0 if reward > 0 else self.idle + 1
        if self.patience and self.idle >= self.patience:
            self.total += step_penalty * (self.env.spec.max_episode_steps - self.steps)
            return True
        return False


def run_batch(envs: list, agent: Agent, tasks: list[tuple], step_penalty: float = 0.0) -> list[tuple[float, int]]:
    """Play `tasks` (controller params, env seed, max steps, patience[, curiosity]) with len(envs)
    episodes in lockstep: one call of V, M and C per step for all of them, each in its own env. An
    episode that ends leaves the batch and the next task takes its slot. Returns (total reward,
    steps) per task, in task order.

    Every row's arithmetic is a batch of one's (numpy_agent.rowwise) on one BLAS thread, so a task's
    result is the same whatever the batch size, the other tasks, or the process that runs it.
    Training episodes may stop early (patience) and earn a curiosity bonus (curiosity x M's negative
    log-likelihood of each z it sees, given its prediction a step earlier); scored results use neither.
    """
    results: list = [None] * len(tasks)

    def start(slot: int, index: int, task: tuple) -> _Episode:
        episode = _Episode(index, task, envs[slot])
        agent.reset_row(slot, task[0])
        return episode

    with one_blas_thread():
        agent.set_params(np.zeros((len(envs), agent.n_in * agent.n_out + agent.n_out), np.float32))
        agent.reset(len(envs))
        agent.track_surprise = any(len(t) > 4 and t[4] for t in tasks)
        slots = Slots(len(envs), tasks, start)
        while rows := slots.busy():
            actions = agent.act(np.stack([slots.episodes[i].obs for i in rows]), rows=np.asarray(rows))
            for r, i in enumerate(rows):
                episode = slots.episodes[i]
                if episode.step(actions[r], float(agent.surprise[r]), step_penalty):
                    results[episode.index] = (episode.total, episode.steps)
                    slots.refill(i)
    return results


def evaluate_batch(batch: tuple[int, list[tuple]]) -> list[tuple[float, int]]:
    """(K, tasks) -> (total reward, steps) per task, in a worker: the tasks run K at a time in
    lockstep (`run_batch`) in this worker's K envs. Tasks are (controller params, env seed, max
    steps, patience[, curiosity])."""
    k, tasks = batch
    w, spec = _WORKER, _WORKER["spec"]
    out: list = [None] * len(tasks)
    for max_steps in sorted({t[2] for t in tasks}):
        mine = [i for i, t in enumerate(tasks) if t[2] == max_steps]
        for _ in mine:
            fault_point("episode")
        envs = [_env(max_steps, slot) for slot in range(max(1, min(k, len(mine))))]
        agent = Agent(w["encoder"], w["rnn"], tasks[mine[0]][0], w["inputs"], spec.map_actions, spec.controller_outputs)
        for i, r in zip(mine, run_batch(envs, agent, [tasks[i] for i in mine], spec.step_penalty)):
            out[i] = r
    return out


def evaluate_task(task: tuple) -> tuple[float, int]:
    """(controller params, env seed, max steps, patience[, curiosity]) -> (total reward, steps), in a
    worker: one episode alone (a batch of one)."""
    return evaluate_batch((1, [task]))[0]


def batch_indices(n: int, k: int, workers: int) -> list[list[int]]:
    """Which of n tasks each batch gets (task indices). One task per batch when K is 1 (an episode per
    worker at a time). Otherwise at least four batches per worker, the tasks dealt out in turn (batch
    j gets tasks j, j + B, j + 2B, ...): episode lengths differ tenfold between candidates early in a
    search, and a worker left with one long batch at the end idles the others."""
    if k <= 1:
        return [[i] for i in range(n)]
    count = min(n, max(-(-n // k), 4 * max(1, workers)))
    return [list(range(j, n, count)) for j in range(count)]


def map_batched(pool, fn, tasks: list, k: int, desc: str | None = None) -> list:
    """fn((K, batch of tasks)) -> a result per task, over `pool`'s workers (`batch_indices`); the
    results in task order, the progress bar counting tasks."""
    groups = batch_indices(len(tasks), k, pool.size)
    done = pool.map(fn, [(k, [tasks[i] for i in g]) for g in groups], desc=desc, units=[len(g) for g in groups])
    out: list = [None] * len(tasks)
    for group, results in zip(groups, done):
        for i, r in zip(group, results):
            out[i] = r
    return out


def map_episodes(pool, tasks: list[tuple], k: int, desc: str | None = None) -> list[tuple[float, int]]:
    """Run episode tasks on `pool`'s workers, K in lockstep per worker; results in task order."""
    return map_batched(pool, evaluate_batch, tasks, k, desc)


def agent_pool(env: str, model_dir: Path, inputs: str, fast_env: bool, workers: int | None, ray_address=None):
    """A TaskPool whose workers each hold model_dir's V and M (numpy) and the env, for map_episodes;
    their envs are closed when it ends."""
    from worldmodels.io.artifacts import Paths
    from worldmodels.runtime.pool import TaskPool

    paths = Paths(Path(model_dir))
    init = (env, str(paths.vision), str(paths.memory), inputs, fast_env)
    return TaskPool(workers, init_worker, init, ray_address, finalizer=close_worker)


def close_worker() -> None:
    """Close the envs this process built as a worker (a pool of one runs its tasks in the caller's
    process, which lives on: VizDoom engines must not)."""
    for env in _WORKER.get("envs", {}).values():
        env.close()
    _WORKER.clear()


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
