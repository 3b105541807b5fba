"""`python -m worldmodels.results`: the code lives in worldmodels/tools/results.py (also `worldmodels results`)."""

import sys

from worldmodels.tools.results import main

if __name__ == "__main__":
    sys.exit(main())
