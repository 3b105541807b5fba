"""`python -m worldmodels.play`: kept so the command users know still works; the code lives in
worldmodels/tools/play.py (also `worldmodels play`)."""

import sys

from worldmodels.tools.play import main

if __name__ == "__main__":
    sys.exit(main())
