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

log = logging.getLogger(__name__)


_ENVS: dict = {}
"""Per-process cache of environments (a worker runs many episodes)."""


def rollout_name(seed: int, index: int) -> str:
    return f"s{seed}_e{index:06d}.npz"


def _agent(env_name: str, agent_dir: str):
    """The trained agent (numpy V, M, C) in agent_dir, loaded once per worker process."""
    key = ("agent", agent_dir)
    if key not in _ENVS:
        from worldmodels.models.loading import load_agent

        _ENVS[key] = load_agent(Path(agent_dir), env_name)
    return _ENVS[key]


def collect_episode(task: tuple[str, dict, int, int, str]) -> int:
    """Run one episode and write it; returns its length. Runs in a worker (no TensorFlow)."""
    env_name, cfg, seed, index, out = task
    from worldmodels.envs.registry import get_spec

    rng = np.random.default_rng([seed, index])
    spec = get_spec(env_name)
    key = (env_name, cfg["max_steps"], cfg["fast_env"])
    if key not in _ENVS:  # one env per worker process: starting VizDoom costs far more than a reset
        _ENVS[key] = spec.make(max_steps=cfg["max_steps"], fast=cfg["fast_env"])
    env = _ENVS[key]
    agent = _agent(env_name, cfg["agent_dir"]) if cfg["policy"] == "controller" else None
    policy = spec.policies["random" if agent is not None else cfg["policy"]](rng)
    obs, _ = env.reset(seed=train_seed(seed, index))
    if agent is not None:
        agent.reset(1)
    with one_blas_thread():  # the agent's arithmetic: one BLAS thread, as in every runner
        frames, actions, rewards, terms, truncs = [], [], [], [], []
        done = False
        while not done:
            if agent is None:
                action = policy(env)
            elif rng.uniform() < cfg["explore"]:  # explore: a random action, which M's state also sees
                action = np.asarray(policy(env), np.float32)
                agent.act(obs[None], action[None])
            else:
                action = agent.act(obs[None])[0]
            frames.append(obs)
            obs, reward, terminated, truncated, _ = env.step(action)
            actions.append(action)
            rewards.append(reward)
            terms.append(terminated)
            truncs.append(truncated)
            done = terminated or truncated
    fault_point("episode")
    save_rollout(Path(out), np.stack(frames), np.stack(actions), np.array(rewards), np.array(terms), np.array(truncs))
    return len(frames)


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
    with TaskPool(min(args.workers, max(1, len(tasks))), ray_address=args.ray_address) as pool:
        lengths = pool.map(collect_episode, tasks, desc="episodes")
    if lengths:
        log.info("collected %d episodes, %d steps (mean length %.0f)", len(lengths), sum(lengths), np.mean(lengths))
    return out_dir
