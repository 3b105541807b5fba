#!/usr/bin/env python
"""Stage 3: encode every rollout with V into the series M trains on.

Example:  python 03_generate_rnn_data.py --env carracing --preset tiny
Reads:    data/<env>/rollouts/*.npz, data/<env>/vision/
Writes:   data/<env>/series/series.h5; reruns skip episodes already encoded
"""

from worldmodels.cli import parse, run_stage
from worldmodels.stages.encode import encode_rollouts

if __name__ == "__main__":
    args, cfg, _ = parse("encode", __doc__)
    run_stage(lambda: encode_rollouts(args, cfg), args, "03 encode")
