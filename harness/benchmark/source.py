"""Where the trained model comes from: a local path, a local artifact folder, or W&B."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.settings import BenchmarkConfig
from harness.wandb_access.fetch import fetch_artifact, read_marker
from harness.wandb_access.refs import RefError, parse_ref


@dataclass
class TrainedSource:
    """The folder or file to load and how it got here."""

    path: Path
    origin: str
    reference: str | None = None
    """Resolved W&B reference (``entity/project/name:vN``) when it came from W&B."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The artifact's metadata (``format``, ``base_model``...), empty for a plain path."""
    tried: list[str] = field(default_factory=list)
    fetch_s: float = 0.0


def _local(path: Path, flag: str) -> Path:
    p = path.expanduser()
    if not p.exists():
        raise BenchmarkInputError(f"{flag} {path}: no such file or folder")
    return p


def check_source(cfg: BenchmarkConfig) -> None:
    """Cheap checks before any work: the local path exists, the reference parses."""
    if cfg.trained_model is not None:
        _local(Path(cfg.trained_model), "--trained_model")
    elif not Path(str(cfg.wandb_artifact)).expanduser().is_dir():
        try:
            parse_ref(str(cfg.wandb_artifact))
        except RefError as e:
            raise BenchmarkInputError(str(e)) from None


def resolve_source(cfg: BenchmarkConfig) -> TrainedSource:
    """The trained model's location; downloads a W&B artifact when no verified copy is local.

    Raises BenchmarkInputError (bad path or reference) or ``fetch.FetchError`` (W&B failures).
    """
    if cfg.trained_model is not None:
        return TrainedSource(_local(Path(cfg.trained_model), "--trained_model"), "local path")
    text = str(cfg.wandb_artifact)
    as_path = Path(text).expanduser()
    if as_path.is_dir():  # a local artifact folder is used as is
        marker = read_marker(as_path) or {}
        return TrainedSource(
            as_path,
            "local artifact folder (used as is)",
            marker.get("reference"),
            dict(marker.get("metadata") or {}),
        )
    try:
        ref = parse_ref(text)
    except RefError as e:
        raise BenchmarkInputError(str(e)) from None
    start = time.perf_counter()
    got = fetch_artifact(
        ref,
        artifacts_dir=cfg.artifacts_dir,
        timeout_s=cfg.wandb_timeout,
        limit_s=cfg.download_limit,
    )
    return TrainedSource(
        got.path,
        f"W&B artifact ({got.origin})",
        got.reference,
        got.metadata,
        got.tried,
        time.perf_counter() - start,
    )
