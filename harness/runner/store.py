"""The run store on disk (the runner's side): ``<root>/<matrix>/<cell-id>/`` folders, scanning, per-cell locks.

File names and formats are in ``harness/contracts/schema.py``. A cell is *done* when its folder holds a
valid ``summary.json``; a folder without one is a partial attempt (a killed runner or cell) and
is cleared before the cell runs again, keeping the old log as ``cell.log.<n>``, and, where it
left a resume point (``checkpoint.resume_every``), that point: the cell continues from it.

Locks are ``fcntl.flock`` locks on ``<root>/<matrix>/.locks/<cell-id>.lock``: the kernel drops
them when the holder dies (even by ``kill -9``), so a stale lock can never block a resume, and
two runners on one store never run the same cell at the same time.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contracts.errors import UserError
from harness.contracts.schema import LOG_FILE, MATRIX_FILE, SUMMARY_FILE, MatrixInfo, SchemaError
from harness.contracts.store_files import read_summary, write_json
from harness.runner.resume import kept_for_resume

LOCK_DIR = ".locks"
KEPT = (LOG_FILE, SUMMARY_FILE)
"""Files of a previous attempt that are kept (renamed ``<name>.<n>``) when a cell runs again."""
_ROTATED = re.compile(r"\.\d+$")


class StoreError(UserError):
    """The store cannot be used (e.g. not writable); the message says what to do."""


@dataclass(frozen=True)
class CellState:
    """What the store knows about one cell."""

    cell_id: str
    outcome: str | None
    """Outcome from summary.json; None when the cell has no valid summary."""
    partial: bool
    """The folder exists without a valid summary (an attempt that never finished)."""
    mtime_ns: int | None = None
    """summary.json modification time (to notice a summary written by another runner)."""


class CellLock:
    """An exclusive, non-blocking ``flock`` held while this process runs the cell."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path

    def release(self) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> CellLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Store:
    """One matrix's folder in the run store."""

    def __init__(self, root: str | os.PathLike[str], matrix_name: str) -> None:
        self.root = Path(root)
        self.matrix_dir = self.root / matrix_name

    def cell_dir(self, cell_id: str) -> Path:
        return self.matrix_dir / cell_id

    def ensure_writable(self) -> None:
        """Create the matrix folder and prove it is writable, or raise StoreError."""
        probe = self.matrix_dir / f".probe-{os.getpid()}"
        try:
            (self.matrix_dir / LOCK_DIR).mkdir(parents=True, exist_ok=True)
            probe.write_text("ok", encoding="utf-8")
            probe.unlink()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StoreError(
                f"cannot write to the run store {self.matrix_dir} ({reason}); "
                "pass a writable folder with --store DIR"
            ) from None

    def write_matrix_meta(
        self, name: str, description: str, source: str, cells: list, paired: dict | None = None
    ) -> None:
        """``matrix.json`` beside the cells: name, description, source file, the axes in matrix
        order with their values, and the paired axes (label -> keys that vary together), which
        reports compare as one axis."""
        paired = paired or {}
        label_of = {key: label for label, keys in paired.items() for key in keys}
        axes: dict[str, list[Any]] = {}
        for cell in cells:
            for key, value in cell.axes.items():
                if key in label_of:  # a paired axis: one entry, its options as mappings
                    key = label_of[key]
                    value = {k: cell.axes.get(k) for k in paired[key]}
                values = axes.setdefault(key, [])
                if value not in values:
                    values.append(value)
        meta = MatrixInfo(name, description, source, axes, paired)
        write_json(self.matrix_dir / MATRIX_FILE, meta)

    def state(self, cell_id: str) -> CellState:
        return _read_state(self.cell_dir(cell_id), cell_id)

    def scan(self) -> dict[str, CellState]:
        """State of every cell folder under the matrix folder (fast: one stat + read each)."""
        if not self.matrix_dir.is_dir():
            return {}
        out: dict[str, CellState] = {}
        with os.scandir(self.matrix_dir) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_dir():
                    continue
                out[entry.name] = _read_state(Path(entry.path), entry.name)
        return out

    def try_lock(self, cell_id: str) -> CellLock | None:
        """Lock the cell for this process; None when another live process holds it."""
        path = self.matrix_dir / LOCK_DIR / f"{cell_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return CellLock(fd, path)

    def is_locked(self, cell_id: str) -> bool:
        """True while another live process holds the cell's lock (creates nothing)."""
        try:
            fd = os.open(self.matrix_dir / LOCK_DIR / f"{cell_id}.lock", os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe lock
        return False

    def read_summary(self, cell_id: str) -> dict[str, Any] | None:
        """The cell's summary.json, or None when it has no valid one."""
        try:
            return read_summary(self.cell_dir(cell_id) / SUMMARY_FILE)
        except SchemaError:
            return None

    def prepare(self, cell_id: str) -> Path:
        """Empty the cell folder for a new attempt, keeping the previous log and summary, and
        the resume point the last attempt left with what it needs (``resume.kept_for_resume``)."""
        cell_dir = self.cell_dir(cell_id)
        cell_dir.mkdir(parents=True, exist_ok=True)
        keep = kept_for_resume(cell_dir)
        n = 1 + max(
            (int(p.suffix[1:]) for p in cell_dir.iterdir() if _ROTATED.search(p.name)), default=0
        )
        for path in sorted(cell_dir.iterdir()):
            if _ROTATED.search(path.name) or path.name in keep:
                continue
            if path.name in KEPT:  # even empty: every attempt's log is kept
                path.rename(cell_dir / f"{path.name}.{n}")
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        return cell_dir


def _read_state(cell_dir: Path, cell_id: str) -> CellState:
    """A cell is done when its summary.json passes ``read_summary`` (the one validity rule); a
    folder with a missing, torn or damaged summary is a partial attempt to run again."""
    path = cell_dir / SUMMARY_FILE
    try:
        mtime = path.stat().st_mtime_ns
        outcome = read_summary(path)["outcome"]
    except (OSError, SchemaError):
        return CellState(cell_id, None, partial=cell_dir.is_dir())
    return CellState(cell_id, outcome, partial=False, mtime_ns=mtime)
