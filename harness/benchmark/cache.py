"""The result cache: per-sample results of one model, in one local SQLite file.

A result is stored under the SHA-256 of its key: the harness version, this file's layout
version, the model's content hash (every tensor of the loaded module, so the base's weights and
any adapter, expert or router on it, plus the tokenizer's vocabulary), what was computed
(``kind``) and its exact inputs (prompt token ids, generation settings, seed, window...). The key
itself is stored beside the value and compared on every read, so a result is never used for
another key. Each batch of results is written in one transaction (all or nothing); SQLite's
locking lets several runs share the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

LAYOUT = 1
"""Bumped when what a cached value means changes (every older entry then misses)."""
ENV = "HARNESS_BENCHMARK_CACHE"


def default_path() -> Path:
    """``$HARNESS_BENCHMARK_CACHE``, else ``$XDG_CACHE_HOME/harness/benchmark.sqlite`` (else
    ``~/.cache/...``)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "harness" / "benchmark.sqlite"


def harness_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vlm-harness")
    except PackageNotFoundError:  # a checkout run in place: its pyproject's version
        text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8")
        found = re.search(r'^version = "([^"]+)"', text, re.M)
        return found.group(1) if found else "unknown"


def model_hash(module: nn.Module, tokenizer: Any) -> str:
    """SHA-256 of every tensor of ``module`` (names, dtypes, shapes, bytes), its class and the
    tokenizer's vocabulary: the model content hash of the cache keys."""
    h = hashlib.sha256(type(module).__name__.encode())
    for name, t in module.state_dict().items():
        t = t.detach()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.contiguous().view(-1).view(torch.uint8).cpu().numpy().tobytes())
    vocab = sorted(tokenizer.get_vocab().items()) if hasattr(tokenizer, "get_vocab") else []
    h.update(json.dumps([vocab, tokenizer.bos_token_id, tokenizer.eos_token_id]).encode())
    return h.hexdigest()


class ResultCache:
    """Get and put results by key; ``path`` None: a cache that holds nothing (``--no_cache``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.hits = self.misses = 0
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results (digest TEXT PRIMARY KEY, key TEXT, value TEXT)"
            )
        return self._db

    def lookup(
        self,
        model: str,
        kind: str,
        inputs: list[dict[str, Any]],
        compute: Callable[[list[int]], list[dict[str, Any]]],
        on_hits: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """The result of every input: cached ones read (their number passed to ``on_hits``,
        before anything is computed), the others ``compute``d (given their indices, in order)
        and stored in one transaction."""
        keys = [
            json.dumps(
                {
                    "harness": harness_version(),
                    "layout": LAYOUT,
                    "model": model,
                    "kind": kind,
                    "inputs": x,
                },
                sort_keys=True,
            )
            for x in inputs
        ]
        digests = [hashlib.sha256(k.encode()).hexdigest() for k in keys]
        found: dict[int, dict[str, Any]] = {}
        if self.path is not None:
            db = self._conn()
            for i, (d, k) in enumerate(zip(digests, keys, strict=True)):
                row = db.execute("SELECT key, value FROM results WHERE digest = ?", (d,)).fetchone()
                if row is not None and row[0] == k:
                    found[i] = json.loads(row[1])
        missing = [i for i in range(len(inputs)) if i not in found]
        self.hits += len(found)
        self.misses += len(missing)
        if on_hits is not None and found:
            on_hits(len(found))
        if missing:
            new = compute(missing)
            found |= dict(zip(missing, new, strict=True))
            if self.path is not None:
                with self._conn() as db:  # one transaction: all of these or none
                    db.executemany(
                        "INSERT OR REPLACE INTO results VALUES (?, ?, ?)",
                        [(digests[i], keys[i], json.dumps(found[i])) for i in missing],
                    )
        return [found[i] for i in range(len(inputs))]

    def summary(self) -> dict[str, Any]:
        """Where the cache is (None: off) and how many results it had and had not."""
        path = str(self.path) if self.path else None
        return {"path": path, "hits": self.hits, "misses": self.misses}
