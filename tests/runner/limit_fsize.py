"""``python limit_fsize.py BYTES CMD [ARGS...]``: run CMD with ``RLIMIT_FSIZE`` = BYTES, so that
every write past BYTES in any file fails (``EFBIG``), as on a full disk. A ``--cell-command``
wrapper for the fault tests."""

from __future__ import annotations

import os
import resource
import sys

if __name__ == "__main__":
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    os.execvp(sys.argv[2], sys.argv[2:])
