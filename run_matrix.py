"""Run an experiment matrix: ``python run_matrix.py experiments/attention.yaml``.

Thin wrapper: all parsing and running lives in ``harness.runner.cli`` (``--help`` for flags).
"""

import sys

from harness.runner.cli import main

if __name__ == "__main__":
    sys.exit(main())
