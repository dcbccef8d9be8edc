"""``python -m harness.wandb_access.mirror``: the W&B side of a matrix run, in its own process.

The runner (``harness/runner/wandb_tracker.py``) starts one mirror per matrix run and writes
JSON lines to its stdin; the runner itself never imports wandb. Each line is one event::

    {"event": "start", "cell_id": ..., "info": {cell.json}, "config": {...}, "cell_dir": ...}
    {"event": "record", "cell_id": ..., "record": {a metrics.jsonl record}}
    {"event": "end", "cell_id": ..., "summary": {summary.json}}

Each cell is one W&B run (``reinit="create_new"``, so cells that overlap in time are separate
runs too), finished with exit code 0 whatever the cell's outcome: an OOM is a result, and the
run's summary says so. End of input finishes the runs still open as not finished (exit code 1).

stdout carries only warnings for the runner to show, one line each; stderr (the runner points
it at ``mirror.log``) gets wandb's and our details. The first W&B error stops the mirror: one
warning, exit status 1; the run store is complete either way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from harness.wandb_access.env import WANDB_DIR_VARS
from harness.wandb_access.fields import (
    MODEL_DIR,
    history_row,
    model_metadata,
    run_name,
    scored_checkpoint,
    summary_fields,
)

NOT_FINISHED = "not finished"
"""Outcome of a run whose cell never reported its end (the runner stopped first)."""


class MirrorError(Exception):
    """A problem the mirror found itself (the message says what to do)."""


@dataclass
class Options:
    mode: str
    project: str
    entity: str | None = None
    log_model: bool = False
    tags: list[str] = field(default_factory=list)


@dataclass
class OpenRun:
    run: Any
    info: dict[str, Any]
    config: dict[str, Any]
    cell_dir: Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.wandb_access.mirror",
        description="Mirror the cell events on stdin (JSON lines) to W&B runs.",
    )
    p.add_argument("--mode", choices=("offline", "online"), default="offline")
    p.add_argument("--project", required=True)
    p.add_argument("--entity")
    p.add_argument("--log-model", action="store_true", help="log scored checkpoints as artifacts")
    p.add_argument("--tag", action="append", default=[], help="a tag on every run (repeatable)")
    return p


class Mirror:
    """The open W&B runs, one per cell."""

    def __init__(self, options: Options, wandb: ModuleType) -> None:
        self.options, self.wandb = options, wandb
        self.runs: dict[str, OpenRun] = {}

    def handle(self, event: dict[str, Any]) -> None:
        kind, cell_id = event.get("event"), str(event.get("cell_id"))
        if kind == "start":
            self.start(cell_id, event["info"], event["config"], Path(event["cell_dir"]))
        elif kind == "record" and cell_id in self.runs:
            row = history_row(event["record"])
            if row is not None:
                self.runs[cell_id].run.log(row)
        elif kind == "end" and cell_id in self.runs:
            self.end(cell_id, event["summary"])

    def start(
        self, cell_id: str, info: dict[str, Any], config: dict[str, Any], cell_dir: Path
    ) -> None:
        if cell_id in self.runs:  # the same cell again (a rerun in one matrix run): new run
            self._finish(cell_id, {"outcome": NOT_FINISHED}, exit_code=1)
        o = self.options
        run = self.wandb.init(
            mode=o.mode,
            project=o.project,
            entity=o.entity,
            group=info.get("matrix"),
            job_type="cell",
            name=run_name(info.get("axes") or {}, cell_id),
            tags=o.tags,
            config={**config, **_cell_keys(cell_id, info)},
            reinit="create_new",
            settings=self.wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )
        run.define_metric("step")
        run.define_metric("*", step_metric="step")
        self.runs[cell_id] = OpenRun(run, info, config, cell_dir)

    def end(self, cell_id: str, summary: dict[str, Any]) -> None:
        fields = summary_fields(summary, self.runs[cell_id].config)
        if self.options.log_model:
            fields.update(self._log_model(self.runs[cell_id], summary))
        self._finish(cell_id, fields, exit_code=0)

    def _finish(self, cell_id: str, fields: dict[str, Any], exit_code: int) -> None:
        opened = self.runs.pop(cell_id)
        opened.run.summary.update(fields)
        opened.run.tags = (*opened.run.tags, str(fields.get("outcome")))
        opened.run.finish(exit_code=exit_code)

    def _log_model(self, opened: OpenRun, summary: dict[str, Any]) -> dict[str, Any]:
        """Log the scored checkpoint as a model artifact that references the file (no copy)."""
        found = scored_checkpoint(summary)
        if found is None:
            return {}
        weights, relative = found
        path = (opened.cell_dir / relative).resolve()
        if not path.is_file():
            return {}
        from loaders import CheckpointError, inspect_checkpoint  # torch: only when logging models

        try:
            described = inspect_checkpoint(path)
        except CheckpointError as exc:
            warn(f"W&B: checkpoint {path} not logged as a model artifact: {exc}")
            return {"model_artifact_error": str(exc)}
        metadata = model_metadata(
            described, path.name, weights, summary, opened.config, opened.info
        )
        name = f"{opened.info.get('matrix')}-{summary.get('cell_id')}"
        artifact = self.wandb.Artifact(name, type="model", metadata=metadata)
        artifact.add_file(
            str(path), name=f"{MODEL_DIR}/{path.name}", policy="immutable", skip_cache=True
        )
        opened.run.log_artifact(artifact)
        return {"model_artifact": name}

    def finish_open(self) -> None:
        """End of input with runs still open: finish them as not finished."""
        for cell_id in list(self.runs):
            self._finish(cell_id, {"outcome": NOT_FINISHED}, exit_code=1)


def _cell_keys(cell_id: str, info: dict[str, Any]) -> dict[str, Any]:
    keys = ("matrix", "source", "axes", "repeat")
    return {"cell_id": cell_id, **{f"cell/{k}": info.get(k) for k in keys}}


def check_dirs(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Every W&B directory set in the environment exists (or is created) and is writable:
    wandb itself would quietly fall back to /tmp."""
    for var in WANDB_DIR_VARS:
        if not environ.get(var):
            continue
        path = Path(environ[var])
        probe = path / f".probe-{os.getpid()}"
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise MirrorError(
                f"{var}={path} is not a writable directory ({exc.strerror}); "
                f"point {var} elsewhere or run with --wandb disabled"
            ) from None


def serve(mirror: Mirror, stream: BinaryIO) -> None:
    """Handle every event on ``stream`` until its end."""
    for line in stream:
        try:
            event = json.loads(line)
        except ValueError:  # a line cut short by a runner that died mid-write
            print(f"ignored a malformed event line: {line[:200]!r}", file=sys.stderr)
            continue
        mirror.handle(event)
    mirror.finish_open()


def warn(text: str) -> None:
    """One line for the runner to show (stdout is the channel back to it)."""
    print(" ".join(text.split()), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = Options(args.mode, args.project, args.entity, args.log_model, args.tag)
    stop = "W&B mirror stopped for the rest of this matrix run (the run store is complete):"
    try:
        check_dirs()
        import wandb
    except (MirrorError, ImportError) as exc:
        warn(f"{stop} {exc}")
        return 1
    mirror = Mirror(options, wandb)
    try:
        serve(mirror, sys.stdin.buffer)
    except (wandb.errors.Error, OSError, MirrorError) as exc:
        warn(f"{stop} {type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
