#!/usr/bin/env python
"""Stage 5: train C with CMA-ES in the real environment (V and M in the loop), then score it on
held-out tracks.

Example:  python 05_train_controller.py --env carracing --preset tiny
Reads:    data/<env>/vision/, data/<env>/memory/
Writes:   data/<env>/controller/ (best.npz, es_state.pkl, generations.csv, cmaes.png, eval.json);
          reruns resume from the last finished generation
"""

from worldmodels.cli import parse, run_stage
from worldmodels.stages.train_controller import train_controller

if __name__ == "__main__":
    args, cfg, _ = parse("controller", __doc__)
    run_stage(lambda: train_controller(args, cfg), args, "05 controller")
