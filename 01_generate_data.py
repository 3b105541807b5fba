#!/usr/bin/env python
"""Stage 1: collect exploration rollouts from the real environment.

Example:  python 01_generate_data.py --env carracing --preset tiny
Reads:    the environment
Writes:   data/<env>/rollouts/*.npz (one episode each); reruns skip episodes on disk
"""

import sys

from worldmodels.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("collect", description=__doc__))
