"""`python -m worldmodels.sweep_temperature`: kept so the command users know still works; the code lives in
worldmodels/tools/sweep_temperature.py (also `worldmodels sweep_temperature`)."""

import sys

from worldmodels.tools.sweep_temperature import main

if __name__ == "__main__":
    sys.exit(main())
