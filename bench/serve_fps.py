#!/usr/bin/env python
"""Bench (issue 21): frames per second `worldmodels serve` can make, per env and view, with the
shipped agents: one step (a dream step decoded by V, or a real env step with V's reconstruction
beside it) plus the PNG the page receives, the controller driving. Target: >= 20 frames/s on 2 cores.
Numpy only: the bench checks that TensorFlow was never imported.

Usage: python bench/serve_fps.py [--seconds 5] [--repeats 3]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
ROOT = Path(__file__).resolve().parents[1]

from worldmodels.tools.serve import World, png  # noqa: E402

TARGET = 20.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    worst = float("inf")
    for env in ("carracing", "doom"):
        world = World(ROOT / "pretrained" / f"{env}-laptop", env)
        world.agent_drives = True
        for view in ("dream", "real"):
            world.set_view(view)
            rates = []
            for _ in range(a.repeats):
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < a.seconds:
                    world.step(set())
                    png(world.frame)
                    n += 1
                    if world.done:
                        world.restart()
                rates.append(n / (time.perf_counter() - t0))
            rate = statistics.median(rates)
            worst = min(worst, rate)
            print(f"{env:9s} {view:5s} {rate:7.1f} frames/s (runs: {', '.join(f'{r:.1f}' for r in rates)})")
        world.close()
    print(f"TensorFlow imported: {'tensorflow' in sys.modules}")
    print(f"slowest: {worst:.1f} frames/s (target >= {TARGET:.0f})")


if __name__ == "__main__":
    main()
