"""`python -m worldmodels.export_pretrained`: kept so the command users know still works; the code lives in
worldmodels/tools/export_pretrained.py (also `worldmodels export_pretrained`)."""

import sys

from worldmodels.tools.export_pretrained import main

if __name__ == "__main__":
    sys.exit(main())
