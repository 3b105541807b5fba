#!/usr/bin/env python
"""Stage 4: train M, the MDN-RNN, on the encoded series.

Example:  python 04_train_rnn.py --env carracing --preset tiny
Reads:    data/<env>/series/series.h5, data/<env>/vision/config.json
Writes:   data/<env>/memory/ (weights, config.json, metrics.csv, tensorboard/); reruns resume
"""

import sys

from worldmodels.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("train-rnn", description=__doc__))
