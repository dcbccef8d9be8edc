"""The runner's side of resume points (the cell's is ``harness/cell/resume.py``): what a new
attempt keeps of the last one, the step it continues from, and following a kept metrics.jsonl.

The runner only reads the manifest (torch-free); the cell verifies the files it names and
falls back to step 0 itself. ``Store.prepare`` keeps ``KEPT_FOR_RESUME`` when the last attempt
left a readable manifest and its outcome allows it (``continues_from_resume_point``); every
other file of the folder is cleared as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

from harness.contracts.outcomes import continues_from_resume_point
from harness.contracts.schema import (
    CKPT_DIR,
    METRICS_FILE,
    RESUME_DIR,
    RESUME_MANIFEST,
    SUMMARY_FILE,
    SchemaError,
)
from harness.contracts.store_files import read_resume_manifest, read_summary

KEPT_FOR_RESUME = (RESUME_DIR, METRICS_FILE, CKPT_DIR)
"""What the cell needs of the last attempt to continue: the point, the metrics lines up to its
step (the cell cuts the rest) and the best checkpoint (the cell puts back the point's own)."""


def resume_manifest(cell_dir: Path) -> dict[str, Any] | None:
    """The resume point's manifest in ``cell_dir``, or None (none there, or unreadable: the
    cell then trains from step 0 and says why)."""
    try:
        return read_resume_manifest(cell_dir / RESUME_DIR / RESUME_MANIFEST)
    except SchemaError:
        return None


def kept_for_resume(cell_dir: Path) -> tuple[str, ...]:
    """The entries of ``cell_dir`` a new attempt keeps: ``KEPT_FOR_RESUME`` when the last one
    left a resume point it may continue from, else none."""
    if not (cell_dir / RESUME_DIR / RESUME_MANIFEST).is_file():
        return ()
    try:
        previous = read_summary(cell_dir / SUMMARY_FILE)["outcome"]
    except SchemaError:
        previous = None  # no summary: the cell and its runner were killed
    return KEPT_FOR_RESUME if continues_from_resume_point(previous) else ()


class HeldPrefix:
    """Where a runner starts reading a metrics.jsonl kept for a resuming cell.

    The kept lines are the earlier attempt's, and the lines after the point's step will be cut
    by the cell: nothing is read until the cell has replaced the file (a new inode). The new
    file then starts with the same bytes when the cell resumed (reading goes on after them) and
    with others when it trained from step 0 (reading starts at 0)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.size = manifest["metrics_bytes"]
        self.inode, self.digest = _inode(path), _digest(path, self.size)

    def offset(self, path: Path) -> int | None:
        """None while the file is the earlier attempt's; then the offset to read from."""
        inode = _inode(path)
        if inode is None or inode == self.inode:
            return None
        same = self.digest is not None and _digest(path, self.size) == self.digest
        return self.size if same else 0


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _digest(path: Path, size: int) -> str | None:
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        data = fh.read(size)
        return hashlib.sha256(data).hexdigest() if len(data) == size else None
    return None
