"""``python -m harness.benchmark``: the same as the ``benchmark`` console script."""

import sys

from harness.benchmark.cli import main

sys.exit(main())
