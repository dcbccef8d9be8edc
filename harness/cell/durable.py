"""Files that survive a kill or a power loss: written to a temporary name, fsynced, renamed,
and checked back by size and SHA-256 (the resume points of ``harness/cell/resume.py``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch

_CHUNK = 1 << 20


class FileCheckError(Exception):
    """A file that is missing, or not the size or the SHA-256 it should be."""


class HashingFile:
    """A write-only file that hashes what passes through it (one pass over the bytes)."""

    def __init__(self, fh) -> None:
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += view.nbytes
        return self.fh.write(view)

    def flush(self) -> None:
        self.fh.flush()


def save_synced(state: dict[str, Any], path: Path) -> tuple[int, str]:
    """``torch.save`` to a temporary name, fsync, rename; (bytes, SHA-256 hex)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            hashing = HashingFile(fh)
            torch.save(state, hashing)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return hashing.size, hashing.sha.hexdigest()


def check_file(path: Path, size: int | None, sha256: str | None) -> None:
    """FileCheckError unless ``path`` exists with this size (and SHA-256)."""
    try:
        actual = path.stat().st_size
    except OSError:
        raise FileCheckError(f"{path} is missing") from None
    if size is not None and actual != size:
        raise FileCheckError(f"{path} has {actual} bytes, the manifest says {size}")
    if sha256 is None:
        return
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
    if sha.hexdigest() != sha256:
        raise FileCheckError(f"{path} fails its SHA-256 check (damaged)")


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link (free, and the source's inode is never rewritten: checkpoints are replaced by
    rename), else a copy (a filesystem without links)."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def fsync_path(path: Path) -> int:
    """fsync a file another handle wrote (flushed); returns its size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse a directory fsync
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
