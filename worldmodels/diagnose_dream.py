"""`python -m worldmodels.diagnose_dream`: kept so the command users know still works; the code lives in
worldmodels/experiments/diagnose_dream.py (also `worldmodels diagnose_dream`)."""

import sys

from worldmodels.experiments.diagnose_dream import main

if __name__ == "__main__":
    sys.exit(main())
