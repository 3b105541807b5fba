"""`python -m worldmodels.toy_vaegan`: kept so the command users know still works; the code lives in
worldmodels/experiments/toy_vaegan.py (also `worldmodels toy_vaegan`)."""

import sys

from worldmodels.experiments.toy_vaegan import main

if __name__ == "__main__":
    sys.exit(main())
