"""`python -m worldmodels.serve`: the code lives in worldmodels/tools/serve.py (also `worldmodels serve`)."""

import sys

from worldmodels.tools.serve import main

if __name__ == "__main__":
    sys.exit(main())
