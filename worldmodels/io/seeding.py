"""Env seeds, in three ranges that never overlap, defined here and nowhere else.

- training:    [0, 10^9): stage 1's episodes and CMA-ES fitness episodes (`train_seed`).
- development: [2x10^9, 4x10^9): every choice (presets, recipes, temperatures, which run to keep),
  stage 5's validation and its own held-out score, and `evaluate` by default. Its first tracks have
  been looked at by many choices: a score there is a development figure, never a final one.
- final:       [4x10^9, 2^32): used only to score an agent about to ship, once
  (`evaluate --seed-range final`). A final-range figure that was then tuned against is a
  development figure.
"""

from __future__ import annotations

import numpy as np

TRAIN_SEED_RANGE = 10**9
"""Training episodes (stage 1 collection, CMA-ES fitness) use env seeds in [0, TRAIN_SEED_RANGE)."""
DEVELOPMENT_SEED_BASE = 2 * 10**9
FINAL_SEED_BASE = 4 * 10**9
SEED_END = 2**32  # VizDoom takes 32-bit seeds
SEED_RANGES = {
    "training": (0, TRAIN_SEED_RANGE),
    "development": (DEVELOPMENT_SEED_BASE, FINAL_SEED_BASE),
    "final": (FINAL_SEED_BASE, SEED_END),
}
"""Name -> [first, end) of each range."""
EVAL_SEED_BASE = DEVELOPMENT_SEED_BASE
"""Held-out evaluation (stage 5, `evaluate` by default) uses env seeds EVAL_SEED_BASE + offset + i:
the development range, disjoint from all training seeds."""


def train_seed(*keys: int) -> int:
    """A training env seed derived from integer keys, e.g. (run seed, episode index)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0] % TRAIN_SEED_RANGE)


def eval_seeds(n: int, offset: int = 0) -> list[int]:
    """The n held-out (development-range) evaluation seeds starting at `offset`."""
    return [EVAL_SEED_BASE + offset + i for i in range(n)]


def seed_range(first: int, n: int = 1) -> str:
    """The name of the range that holds seeds first .. first+n-1 ('unassigned' between training and
    development); ValueError if they straddle two ranges or leave [0, 2^32)."""
    last = first + n - 1
    for name, (lo, hi) in SEED_RANGES.items():
        if lo <= first < hi:
            if last >= hi:
                raise ValueError(f"seeds {first}..{last} straddle the {name} range's end at {hi}")
            return name
    if TRAIN_SEED_RANGE <= first < DEVELOPMENT_SEED_BASE and last < DEVELOPMENT_SEED_BASE:
        return "unassigned"
    raise ValueError(f"seeds {first}..{last} are outside [0, {SEED_END}) or straddle two ranges")
