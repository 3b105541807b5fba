#!/usr/bin/env python
"""Bench (issue 3c): stage 1 episodes/min with 1 and 2 workers (the real stage function, fast env,
pursuit policy), alternating so machine noise hits both alike.

Usage: python bench/collect_workers.py [--episodes 8] [--max-steps 300] [--repeats 3]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from worldmodels.config import (
    Run,  # noqa: E402
    make_stage_config,  # noqa: E402
)
from worldmodels.stages.collect import generate_data  # noqa: E402


def episodes_per_minute(workers: int, episodes: int, max_steps: int) -> float:
    cfg = make_stage_config("collect", "carracing", "laptop", {"episodes": episodes, "max_steps": max_steps})
    with tempfile.TemporaryDirectory() as d:
        args = Run("carracing", "laptop", Path(d), seed=0, workers=workers)
        t = time.perf_counter()
        generate_data(args, cfg)
        return episodes / (time.perf_counter() - t) * 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    one, two = [], []
    for r in range(a.repeats):
        one.append(episodes_per_minute(1, a.episodes, a.max_steps))
        two.append(episodes_per_minute(2, a.episodes, a.max_steps))
        print(f"repeat {r}: 1 worker {one[-1]:.1f} episodes/min, 2 workers {two[-1]:.1f} episodes/min")
    m1, m2 = statistics.median(one), statistics.median(two)
    print(
        f"median: 1 worker {m1:.1f}, 2 workers {m2:.1f} episodes/min ({a.max_steps}-step episodes); "
        f"speed-up {m2 / m1:.2f}x (includes spawning the workers)"
    )


if __name__ == "__main__":
    main()
