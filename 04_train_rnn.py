#!/usr/bin/env python
"""Stage 4: train M, the MDN-RNN, on the encoded series.

Example:  python 04_train_rnn.py --env carracing --preset tiny
Reads:    data/<env>/series/series.h5, data/<env>/vision/config.json
Writes:   data/<env>/memory/ (weights, config.json, metrics.csv, tensorboard/); reruns resume
"""

from worldmodels.cli import parse, run_stage
from worldmodels.stages.train_rnn import train_rnn

if __name__ == "__main__":
    args, cfg, _ = parse("memory", __doc__)
    run_stage(lambda: train_rnn(args, cfg), args, "04 memory")
