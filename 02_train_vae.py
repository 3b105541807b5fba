#!/usr/bin/env python
"""Stage 2: train V, the ConvVAE, on the rollouts' frames (streamed from disk).

Example:  python 02_train_vae.py --env carracing --preset tiny
Reads:    data/<env>/rollouts/*.npz
Writes:   data/<env>/vision/ (weights, config.json, metrics.csv, tensorboard/, reconstructions.png);
          reruns resume from the last finished epoch
"""

from worldmodels.cli import parse, run_stage
from worldmodels.stages.train_vae import train_vae

if __name__ == "__main__":
    args, cfg, _ = parse("vision", __doc__)
    run_stage(lambda: train_vae(args, cfg), args, "02 vision")
