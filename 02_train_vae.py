#!/usr/bin/env python
"""Stage 2: train V, the ConvVAE, on the rollouts' frames (streamed from disk).

Example:  python 02_train_vae.py --env carracing --preset tiny
Reads:    data/<env>/rollouts/*.npz
Writes:   data/<env>/vision/ (weights, config.json, metrics.csv, tensorboard/, reconstructions.png);
          reruns resume from the last finished epoch
"""

import sys

from worldmodels.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("train-vae", description=__doc__))
