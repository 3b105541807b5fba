#!/usr/bin/env python
"""Stage 3: encode every rollout with V into the series M trains on.

Example:  python 03_generate_rnn_data.py --env carracing --preset tiny
Reads:    data/<env>/rollouts/*.npz, data/<env>/vision/
Writes:   data/<env>/series/series.h5; reruns skip episodes already encoded
"""

import sys

from worldmodels.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("encode", description=__doc__))
