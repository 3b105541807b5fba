"""`python -m worldmodels.check`: kept so the command users know still works; the code lives in
worldmodels/tools/check.py (also `worldmodels check`)."""

import sys

from worldmodels.tools.check import main

if __name__ == "__main__":
    sys.exit(main())
