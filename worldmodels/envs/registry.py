"""One place that knows each environment: how to build it, its action size and action mapping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

from worldmodels import paper


@dataclass(frozen=True)
class EnvSpec:
    """What the pipeline needs to know about an environment."""

    name: str
    action_dim: int
    """Size of the action vector stored in rollouts and fed to M."""
    controller_outputs: int
    make: Callable[..., gym.Env]
    map_actions: Callable[[np.ndarray], np.ndarray]
    """Controller outputs [..., controller_outputs] -> env actions [..., action_dim] (paper's squashing)."""
    policies: dict = field(default_factory=dict)
    """Exploration policies for stage 1: name -> class(rng), called as policy(env) -> action."""
    step_penalty: float = 0.0
    """Reward the env gives per step when nothing else happens (CarRacing: -0.1)."""
    paper_score: float | None = None
    random_score: float | None = None
    benchmark_steps: int = 1000
    """The paper's episode length for scoring (CarRacing 1000, TakeCover 2100)."""
    has_fast_renderer: bool = False
    """Whether fast=True selects another renderer (CarRacing's, same pixels); else it changes nothing."""
    good_score: float | None = None
    """An episode at or above it counts as a good one in results (CarRacing: 700; Doom: 750 steps, "solved")."""

    def renderer(self, fast: bool) -> str:
        """The renderer an episode ran on, for result records: 'fast' or 'stock'."""
        return "fast" if fast and self.has_fast_renderer else "stock"


def _carracing_spec() -> EnvSpec:
    from worldmodels.envs import carracing

    return EnvSpec(
        "carracing",
        3,
        3,
        carracing.make_carracing,
        carracing.map_actions,
        carracing.POLICIES,
        step_penalty=-0.1,
        has_fast_renderer=True,
        paper_score=paper.BEST_SCORE["carracing"],
        good_score=700.0,
    )


def _doom_spec() -> EnvSpec:
    from worldmodels.envs import doom

    return EnvSpec(
        "doom",
        1,
        1,
        doom.make_doom,
        doom.map_actions,
        doom.POLICIES,
        paper_score=paper.BEST_SCORE["doom"],
        random_score=paper.RANDOM_SCORE["doom"],
        benchmark_steps=doom.MAX_STEPS,
        good_score=750.0,
    )


def recorded_renderer(record: dict, controller_cfg: dict | None = None) -> str:
    """The renderer a score record was made on: its own "renderer" field, else what its settings imply
    (stage 5's eval.json: the controller's --fast-env; evaluate's JSON: its "stock_env" flag)."""
    if "renderer" in record:
        return record["renderer"]
    env = record.get("env") or (controller_cfg or {}).get("env")
    if env not in _FACTORIES:
        return "?"
    if controller_cfg is not None:
        return get_spec(env).renderer(controller_cfg.get("config", {}).get("fast_env", True))
    return "stock" if record.get("stock_env", True) else get_spec(env).renderer(True)


_FACTORIES = {"carracing": _carracing_spec, "doom": _doom_spec}
ENV_SPECS = tuple(_FACTORIES)


def _gym_spec(name: str) -> EnvSpec:
    """Any gymnasium env with image observations (`gym:<id>[?options]`, worldmodels/envs/gym_env.py)."""
    import functools

    from worldmodels.envs import gym_env

    _, n, _ = gym_env.spaces_of(name)  # makes the env once: a bad id or action space fails here
    return EnvSpec(
        name,
        n,
        n,
        functools.partial(gym_env.GymPixels, name),
        gym_env.action_mapper(name),
        gym_env.POLICIES,
    )


def is_known_env(name: str) -> bool:
    """One of the tuned envs, or a gym:<id> name (whether that env can be made is get_spec's question)."""
    return name in _FACTORIES or name.startswith("gym:")


def get_spec(name: str) -> EnvSpec:
    if name.startswith("gym:"):
        return _gym_spec(name)
    if name not in _FACTORIES:
        raise ValueError(f"unknown env {name!r}; choose one of {', '.join(_FACTORIES)} or gym:<id>")
    return _FACTORIES[name]()


def make_env(name: str, **kwargs) -> gym.Env:
    """Build env `name` with 64x64x3 uint8 observations. kwargs go to the env's factory."""
    return get_spec(name).make(**kwargs)
