"""``python -m harness.cell CELL.yaml --out DIR``: see ``harness.cell.run``."""

import sys

from harness.cell.run import main

if __name__ == "__main__":
    sys.exit(main())
