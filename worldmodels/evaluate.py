"""`python -m worldmodels.evaluate`: kept so the command users know still works; the code lives in
worldmodels/tools/evaluate.py (also `worldmodels evaluate`)."""

import sys

from worldmodels.tools.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
