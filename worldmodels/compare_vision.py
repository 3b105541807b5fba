"""`python -m worldmodels.compare_vision`: kept so the command users know still works; the code lives in
worldmodels/experiments/compare_vision.py (also `worldmodels compare_vision`)."""

import sys

from worldmodels.experiments.compare_vision import main

if __name__ == "__main__":
    sys.exit(main())
