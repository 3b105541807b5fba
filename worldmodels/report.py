"""`python -m worldmodels.report`: kept so the command users know still works; the code lives in
worldmodels/tools/report.py (also `worldmodels report`)."""

import sys

from worldmodels.tools.report import main

if __name__ == "__main__":
    sys.exit(main())
