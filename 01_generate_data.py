#!/usr/bin/env python
"""Stage 1: collect exploration rollouts from the real environment.

Example:  python 01_generate_data.py --env carracing --preset tiny
Reads:    the environment
Writes:   data/<env>/rollouts/*.npz (one episode each); reruns skip episodes on disk
"""

from worldmodels.cli import parse, run_stage
from worldmodels.stages.collect import generate_data

if __name__ == "__main__":
    args, cfg, _ = parse("collect", __doc__)
    run_stage(lambda: generate_data(args, cfg), args, "01 collect")
