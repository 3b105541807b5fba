"""Stage 1: collect episodes of an exploration policy into rollouts/*.npz (one file per episode)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from worldmodels.config import CollectConfig, Run
from worldmodels.io.artifacts import (
    SCRIPTS,
    Paths,
    StageError,
    clean_temporaries,
    command_line,
    fault_point,
    one_writer,
    read_json,
    write_json,
)
from worldmodels.io.data import inspect_rollout, save_rollout
from worldmodels.io.seeding import train_seed
from worldmodels.models.numpy_agent import one_blas_thread
from worldmodels.runtime.pool import TaskPool
from worldmodels.runtime.rollout import Slots, map_batched

log = logging.getLogger(__name__)


_ENVS: dict = {}
"""Per-process cache of environments (a worker runs many episodes)."""


def close_envs() -> None:
    """Close this process's envs (a pool of one collects in the stage's own process)."""
    for key, env in list(_ENVS.items()):
        if key[0] != "agent":
            env.close()
    _ENVS.clear()


def rollout_name(seed: int, index: int) -> str:
    return f"s{seed}_e{index:06d}.npz"


def _agent(env_name: str, agent_dir: str):
    """The trained agent (numpy V, M, C) in agent_dir, loaded once per worker process."""
    key = ("agent", agent_dir)
    if key not in _ENVS:
        from worldmodels.models.loading import load_agent

        _ENVS[key] = load_agent(Path(agent_dir), env_name)
    return _ENVS[key]


def _env(env_name: str, cfg: dict, slot: int = 0):
    """The worker's env number `slot` for these settings, built once (starting VizDoom costs far more
    than a reset)."""
    from worldmodels.envs.registry import get_spec

    key = (env_name, cfg["max_steps"], cfg["fast_env"], slot)
    if key not in _ENVS:
        _ENVS[key] = get_spec(env_name).make(max_steps=cfg["max_steps"], fast=cfg["fast_env"])
    return _ENVS[key]


def collect_episode(task: tuple[str, dict, int, int, str]) -> int:
    """Run one episode of an exploration policy and write it; returns its length. Runs in a worker
    (no TensorFlow). Episodes of a trained agent go through `collect_batch`."""
    env_name, cfg, seed, index, out = task
    from worldmodels.envs.registry import get_spec

    rng = np.random.default_rng([seed, index])
    env = _env(env_name, cfg)
    policy = get_spec(env_name).policies[cfg["policy"]](rng)
    obs, _ = env.reset(seed=train_seed(seed, index))
    episode = _Recording(out)
    done = False
    while not done:
        action = policy(env)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        done = episode.add(obs, action, reward, terminated, truncated)
        obs = next_obs
    fault_point("episode")
    return episode.save()


class _Recording:
    """The frames, actions, rewards and end flags of one episode being collected, then its file."""

    def __init__(self, out: str):
        self.out = out
        self.frames: list = []
        self.actions: list = []
        self.rewards: list = []
        self.terms: list = []
        self.truncs: list = []

    def add(self, obs, action, reward, terminated, truncated) -> bool:
        """Record one step (the frame the action was chosen on); True when the episode is over."""
        self.frames.append(obs)
        self.actions.append(action)
        self.rewards.append(reward)
        self.terms.append(terminated)
        self.truncs.append(truncated)
        return bool(terminated or truncated)

    def save(self) -> int:
        arrays = (np.stack(self.frames), np.stack(self.actions), np.array(self.rewards))
        save_rollout(Path(self.out), *arrays, np.array(self.terms), np.array(self.truncs))
        return len(self.frames)


def collect_batch(batch: tuple[int, list[tuple[str, dict, int, int, str]]]) -> list[int]:
    """(K, episode tasks) of a trained agent (--policy controller) -> each episode's length: K episodes
    in lockstep, one call of V, M and C per step for all of them; each episode is written as it ends
    and the next task takes its env. Every row's arithmetic is a batch of one's, on one BLAS thread, so
    an episode's file is the same whatever K or the worker (and a random action, with probability
    `explore`, replaces C's in that row only; M's state sees whichever is taken)."""
    k, tasks = batch
    env_name, cfg = tasks[0][0], tasks[0][1]
    from worldmodels.envs.registry import get_spec

    spec = get_spec(env_name)
    agent = _agent(env_name, cfg["agent_dir"])
    envs = [_env(env_name, cfg, slot) for slot in range(max(1, min(k, len(tasks))))]
    lengths: list = [None] * len(tasks)

    def start(slot: int, i: int, task: tuple) -> dict:
        _, _, seed, index, out = task
        rng = np.random.default_rng([seed, index])
        obs, _ = envs[slot].reset(seed=train_seed(seed, index))
        policy = spec.policies["random"](rng)
        agent.reset_row(slot)
        return {"i": i, "rng": rng, "policy": policy, "obs": obs, "rec": _Recording(out)}

    with one_blas_thread():  # the agent's arithmetic: one BLAS thread, as in every runner
        agent.reset(len(envs))
        slots = Slots(len(envs), tasks, start)
        while rows := slots.busy():
            explore = np.array([slots.episodes[j]["rng"].uniform() < cfg["explore"] for j in rows])
            random = np.zeros((len(rows), spec.action_dim), np.float32)
            for r, j in enumerate(rows):
                if explore[r]:  # a random action, which M's state also sees
                    random[r] = np.asarray(slots.episodes[j]["policy"](envs[j]), np.float32)
            frames = np.stack([slots.episodes[j]["obs"] for j in rows])
            actions = agent.act(frames, random, explore, np.asarray(rows))
            for r, j in enumerate(rows):
                e = slots.episodes[j]
                obs = e["obs"]
                e["obs"], reward, terminated, truncated, _ = envs[j].step(actions[r])
                if e["rec"].add(obs, actions[r], reward, terminated, truncated):
                    fault_point("episode")
                    lengths[e["i"]] = e["rec"].save()
                    slots.refill(j)
    return lengths


def _on_disk(path: Path) -> bool:
    """Whether episode `path` is collected: present and sound by its headers. A damaged one (cut short,
    emptied) is deleted and collected again; its seed makes it the same episode as before."""
    if not path.exists():
        return False
    try:
        inspect_rollout(path)
        return True
    except StageError as e:
        log.warning("%s; collecting it again", str(e).split("; delete")[0])
        path.unlink()
        return False


@one_writer("collect", "rollouts")
def generate_data(args: Run, cfg: CollectConfig) -> Path:
    """Collect cfg.episodes episodes, skipping those already on disk. Returns the rollouts dir."""
    from worldmodels.envs.registry import get_spec

    policies = get_spec(args.env).policies
    if cfg.policy not in policies and cfg.policy != "controller":
        raise StageError(f"--policy {cfg.policy} is not available for {args.env}; choose {', '.join(policies)}")
    out_dir = Paths(args.data_dir).rollouts
    cfg_dict = {"max_steps": cfg.max_steps, "policy": cfg.policy, "fast_env": cfg.fast_env}
    if cfg.policy == "controller":
        from worldmodels.models.loading import load_agent_weights

        try:
            load_agent_weights(Path(cfg.agent_dir), args.env)  # validated here: workers load it as it is
        except StageError as e:
            raise StageError(f"--policy controller --agent-dir {cfg.agent_dir}: {e}") from e
        cfg_dict.update(agent_dir=str(Path(cfg.agent_dir).resolve()), explore=cfg.explore)
    manifest = out_dir / "manifest.json"
    if manifest.exists():
        old = read_json(manifest, "rollouts", args)
        mine = {"env": args.env, "seed": args.seed, "collect": cfg_dict}
        theirs = {k: old.get(k) for k in mine}
        if theirs != mine:
            raise StageError(
                f"{out_dir} holds rollouts collected with other settings ({theirs}, now {mine}); "
                "use another --data-dir, or delete the directory to start over"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_temporaries(out_dir)
    # Written before collecting, so a killed run's episodes are never mixed with other settings'.
    write_json(
        manifest,
        {
            "env": args.env,
            "preset": args.preset,
            "seed": args.seed,
            "collect": cfg_dict,
            "episodes": cfg.episodes,
            "command": command_line(SCRIPTS["rollouts"], args),
        },
    )
    todo = [i for i in range(cfg.episodes) if not _on_disk(out_dir / rollout_name(args.seed, i))]
    log.info(
        "%d of %d episodes on disk; collecting %d with %d workers",
        cfg.episodes - len(todo),
        cfg.episodes,
        len(todo),
        args.workers,
    )
    tasks = [(args.env, cfg_dict, args.seed, i, str(out_dir / rollout_name(args.seed, i))) for i in todo]
    with TaskPool(min(args.workers, max(1, len(tasks))), ray_address=args.ray_address, finalizer=close_envs) as pool:
        if cfg.policy == "controller":  # a trained agent: its episodes K at a time per worker
            lengths = map_batched(pool, collect_batch, tasks, args.envs_per_worker, "episodes")
        else:
            lengths = pool.map(collect_episode, tasks, desc="episodes")
    if lengths:
        log.info("collected %d episodes, %d steps (mean length %.0f)", len(lengths), sum(lengths), np.mean(lengths))
    return out_dir
