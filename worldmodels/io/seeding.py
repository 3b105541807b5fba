"""Seeds for environments: training tracks and held-out evaluation tracks never overlap."""

from __future__ import annotations

import numpy as np

TRAIN_SEED_RANGE = 10**9
"""Training episodes (stage 1 collection, CMA-ES fitness) use env seeds in [0, TRAIN_SEED_RANGE)."""
EVAL_SEED_BASE = 2 * 10**9
"""Held-out evaluation uses env seeds EVAL_SEED_BASE + offset + i, disjoint from all training seeds."""


def train_seed(*keys: int) -> int:
    """A training env seed derived from integer keys, e.g. (run seed, episode index)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0] % TRAIN_SEED_RANGE)


def eval_seeds(n: int, offset: int = 0) -> list[int]:
    """The n held-out evaluation seeds starting at `offset`."""
    return [EVAL_SEED_BASE + offset + i for i in range(n)]
