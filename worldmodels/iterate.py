"""`python -m worldmodels.iterate`: kept so the command users know still works; the code lives in
worldmodels/tools/iterate.py (also `worldmodels iterate`)."""

import sys

from worldmodels.tools.iterate import main

if __name__ == "__main__":
    sys.exit(main())
