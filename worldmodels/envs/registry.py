"""One place that knows each environment: how to build it, its action size and action mapping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class EnvSpec:
    """What the pipeline needs to know about an environment."""

    name: str
    action_dim: int
    controller_outputs: int
    make: Callable[..., gym.Env]
    map_actions: Callable[[np.ndarray], np.ndarray]
    """Controller outputs [..., controller_outputs] -> env actions [..., action_dim] (paper's squashing)."""
    step_penalty: float = 0.0
    """Reward the env gives per step when nothing else happens (CarRacing: -0.1)."""


def _carracing_spec() -> EnvSpec:
    from worldmodels.envs import carracing

    return EnvSpec("carracing", 3, 3, carracing.make_carracing, carracing.map_actions, step_penalty=-0.1)


_FACTORIES = {"carracing": _carracing_spec}
ENV_SPECS = tuple(_FACTORIES)


def get_spec(name: str) -> EnvSpec:
    if name not in _FACTORIES:
        raise ValueError(f"unknown env {name!r}; choose one of {', '.join(_FACTORIES)}")
    return _FACTORIES[name]()


def make_env(name: str, **kwargs) -> gym.Env:
    """Build env `name` with 64x64x3 uint8 observations. kwargs go to the env's factory."""
    return get_spec(name).make(**kwargs)
