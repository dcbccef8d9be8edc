"""Where this checkout is, and the environment a child process needs to import it.

Every child the harness starts (a cell, a Ray task, the W&B mirror, an artifact fetch) imports
this checkout's ``harness``, whatever the caller's working directory: one definition here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root: the folder holding ``harness/``, ``loaders/`` and ``reports/``."""


def with_repo_on_path(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` whose ``PYTHONPATH`` starts with the checkout (the rest kept in order)."""
    out = dict(env)
    rest = out.get("PYTHONPATH")
    out["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + rest if rest else "")
    return out
