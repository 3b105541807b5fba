#!/usr/bin/env python
"""Stage 5: train C with CMA-ES in the real environment (V and M in the loop), then score it on
held-out tracks.

Example:  python 05_train_controller.py --env carracing --preset tiny
Reads:    data/<env>/vision/, data/<env>/memory/
Writes:   data/<env>/controller/ (best.npz, es_state.pkl, generations.csv, cmaes.png, eval.json);
          reruns resume from the last finished generation
"""

import sys

from worldmodels.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main("train-controller", description=__doc__))
