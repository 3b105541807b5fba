"""The paper's published numbers (Ha & Schmidhuber, "World Models", 2018), in one place.

Every table, plot and model card that sets our scores beside the paper's reads them from here.
"""

from __future__ import annotations

CARRACING_TABLE1 = {
    "V only": (632, 251),
    "V + hidden layer": (788, 141),
    "full world model": (906, 21),
}
"""Table 1, CarRacing-v0 over 100 random tracks: method -> (mean, std)."""

DOOM_TABLE2 = {0.10: (2086, 193), 0.50: (2060, 196), 1.00: (1145, 868), 1.15: (918, 1092), 1.30: (732, 753)}
"""Table 2, DoomTakeCover, C trained only in the dream: temperature -> (dream score, real score)."""

DOOM_TABLE2_REAL_STD = {0.10: 58, 0.50: 50, 1.00: 511, 1.15: 556, 1.30: 139}
"""Table 2's actual-score standard deviations: temperature -> std."""

DOOM_RANDOM = (210, 108)
"""DoomTakeCover, random policy over 100 episodes: (mean, std)."""

BEST_SCORE = {"carracing": 906.0, "doom": 1092.0}
"""The paper's best score per env (CarRacing: full world model; Doom: dream-trained at tau 1.15)."""

RANDOM_SCORE = {"carracing": None, "doom": float(DOOM_RANDOM[0])}
"""The paper's random-policy score per env, where it gives one."""

SUMMARY = {
    "carracing": "906 ± 21 (100 tracks; full World Model, trained in the real env)",
    "doom": "1092 ± 556 (100 episodes; trained in the dream at tau 1.15); random policy 210 ± 108",
}
"""One line per env for reports and model cards."""
