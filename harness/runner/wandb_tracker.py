"""The runner's W&B tracker: every cell streamed to one mirror process, never waited on.

The runner's parent process stays light: it never imports wandb. ``WandbTracker`` starts one
``python -m harness.wandb_access.mirror`` child per matrix run (the W&B environment of
``harness.wandb_access.env``: every W&B directory under ``<store>/wandb/``) and writes one JSON
line per event to its stdin. Writes never block the runner (no threads either: cells are
forked): the pipe is non-blocking, a backlog is kept in memory up to ``MAX_BACKLOG`` bytes, and
past that metrics records are dropped from the mirror (never from the store) with one warning.
The child's stdout comes back as warning lines; its stderr goes to ``<store>/wandb/mirror.log``.
A W&B failure is one warning and the matrix goes on; ``close`` waits for the child at most
``finish_timeout_s``, then stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contracts.config import ConfigError
from harness.contracts.paths import with_repo_on_path
from harness.runner.tracking import (
    DEFAULT_PROJECT,
    MODES,
    NullTracker,
    Tracker,
    TrackingConfig,
    entity_problem,
    project_problem,
)
from harness.wandb_access.env import wandb_env

MIRROR_MODULE = "harness.wandb_access.mirror"
WANDB_SUBDIR = "wandb"
MIRROR_LOG = "mirror.log"
MAX_BACKLOG = 8 << 20
PIPE_SIZE = 1 << 20
ENV_MODES = {
    "offline": "offline",
    "dryrun": "offline",
    "online": "online",
    "run": "online",
    "disabled": "disabled",
}
"""$WANDB_MODE values (wandb's own spellings) -> a mode."""
CLEARED_ENV = ("WANDB_RUN_ID", "WANDB_RESUME", "WANDB_NAME", "WANDB_RUN_GROUP")
"""Variables that would make every cell the same W&B run."""


@dataclass(frozen=True)
class WandbSettings:
    """The tracking settings in effect (flags > matrix file > environment > defaults)."""

    mode: str
    project: str
    entity: str | None = None
    log_model: bool = False
    tags: tuple[str, ...] = ()
    finish_timeout_s: float = TrackingConfig.finish_timeout_s


def resolve_tracking(
    file: TrackingConfig,
    mode: str | None = None,
    project: str | None = None,
    entity: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> WandbSettings:
    """Merge ``--wandb*`` flags, the matrix's ``tracking:`` and $WANDB_MODE/$WANDB_PROJECT;
    raise ConfigError for a value W&B would refuse."""
    environ = os.environ if environ is None else environ
    errors: list[str] = []
    env_mode = environ.get("WANDB_MODE", "").strip().lower()
    if mode is None and file.mode is None and env_mode and env_mode not in ENV_MODES:
        errors.append(
            f"WANDB_MODE={env_mode!r} is not one of {', '.join(MODES)}: unset it or pass --wandb"
        )
    mode = mode or file.mode or ENV_MODES.get(env_mode) or "offline"
    project = project or file.project or environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
    if problem := project_problem(project):
        errors.append(f"W&B project: {problem} (--wandb-project, tracking.project, WANDB_PROJECT)")
    entity = entity or file.entity
    if entity and (problem := entity_problem(entity)):
        errors.append(f"W&B entity: {problem} (--wandb-entity, tracking.entity)")
    if errors:
        raise ConfigError(errors, "run_matrix.py")
    log_model = file.log_model if file.log_model is not None else mode == "online"
    return WandbSettings(mode, project, entity, log_model, file.tags, file.finish_timeout_s)


def make_tracker(
    settings: WandbSettings, store_root: Path, matrix_dir: Path, warn: Callable[[str], None]
) -> Tracker:
    """The tracker for these settings: nothing at all when W&B is disabled."""
    if settings.mode == "disabled":
        return NullTracker()
    return WandbTracker(settings, Path(store_root) / WANDB_SUBDIR, matrix_dir, warn)


class WandbTracker:
    """Streams cell events to the mirror process (see the module docstring)."""

    def __init__(
        self,
        settings: WandbSettings,
        root: Path,
        matrix_dir: Path,
        warn: Callable[[str], None],
        command: list[str] | None = None,
    ) -> None:
        self.settings, self.root, self.warn = settings, Path(root), warn
        self.matrix_dir = Path(matrix_dir).resolve()
        self.proc: subprocess.Popen[bytes] | None = None
        self.backlog = bytearray()
        self.dropped = 0
        self.reported = False
        self._partial = b""
        self._command = command or [sys.executable, "-m", MIRROR_MODULE]
        self._started = False

    @property
    def log_path(self) -> Path:
        return self.root / MIRROR_LOG

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        s = self.settings
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [*command, "--mode", s.mode, "--project", s.project]
        argv += ["--entity", s.entity] if s.entity else []
        argv += ["--log-model"] if s.log_model else []
        for tag in s.tags:
            argv += ["--tag", tag]
        env = with_repo_on_path({k: v for k, v in os.environ.items() if k not in CLEARED_ENV})
        env.update(wandb_env(self.root, user_config=s.mode == "online"))
        env |= {"WANDB_MODE": s.mode, "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                bufsize=0,
                start_new_session=True,  # a terminal Ctrl-C reaches the runner, not the mirror
            )
        assert proc.stdin is not None and proc.stdout is not None
        for stream in (proc.stdin, proc.stdout):
            os.set_blocking(stream.fileno(), False)
        with contextlib.suppress(OSError):  # a larger pipe where the kernel allows it
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        return proc

    # ------------------------------------------------------------------ Tracker hooks

    def on_cell_start(self, cell_id: str, info: dict[str, Any], config: dict[str, Any]) -> None:
        cell_dir = str(self.matrix_dir / cell_id)
        event = {"info": info, "config": config, "cell_dir": cell_dir}
        self._send({"event": "start", "cell_id": cell_id, **event})

    def on_record(self, cell_id: str, record: dict[str, Any]) -> None:
        self._send({"event": "record", "cell_id": cell_id, "record": record}, droppable=True)

    def on_cell_end(self, cell_id: str, summary: dict[str, Any]) -> None:
        self._send({"event": "end", "cell_id": cell_id, "summary": summary})

    def close(self) -> None:
        """Let the mirror finish, at most ``finish_timeout_s``; then stop it with a warning."""
        proc = self.proc
        if proc is None:
            return
        deadline = time.monotonic() + self.settings.finish_timeout_s
        try:
            self._drain(deadline)
            with contextlib.suppress(OSError):
                proc.stdin.close()  # type: ignore[union-attr] - end of input: the mirror finishes
            while proc.poll() is None and (left := deadline - time.monotonic()) > 0:
                select.select([proc.stdout], [], [], min(left, 0.5))
                self._relay()
            self._relay()
        except KeyboardInterrupt:
            self._kill()
            self._off("stopped by Ctrl-C; the last runs may be incomplete", after_last_cell=True)
            return
        if proc.poll() is None:
            self._kill()
            self._off(
                f"did not finish within {self.settings.finish_timeout_s:g} s and was stopped "
                "(tracking.finish_timeout_s); the last runs may be incomplete",
                after_last_cell=True,
            )
        elif proc.returncode != 0:
            self._lost()
        self._stop()

    # ------------------------------------------------------------------ the pipe

    def _send(self, event: dict[str, Any], droppable: bool = False) -> None:
        if not self._started:  # at the first cell: no mirror for a run that runs nothing
            self._started = True
            try:
                self.proc = self._spawn(self._command)
            except OSError as exc:
                self._off(f"cannot use {self.root} ({exc.strerror or exc})")
        if self.proc is None:
            return
        self._relay()
        if self.proc.poll() is not None:
            self._lost()
            return
        line = (json.dumps(event, default=str) + "\n").encode()
        try:
            self._flush()
            if droppable and len(self.backlog) + len(line) > MAX_BACKLOG:
                self._drop()
                return
            self.backlog += line
            self._flush()
        except OSError:  # the mirror is gone (EPIPE)
            self._lost()

    def _flush(self) -> None:
        """Write what the pipe takes now; keep the rest for later."""
        fd = self.proc.stdin.fileno()  # type: ignore[union-attr]
        while self.backlog:
            try:
                written = os.write(fd, self.backlog[:PIPE_SIZE])
            except BlockingIOError:
                return
            del self.backlog[:written]

    def _drain(self, deadline: float) -> None:
        """Write the whole backlog, waiting for the pipe, until ``deadline``."""
        while self.backlog and (left := deadline - time.monotonic()) > 0:
            select.select([], [self.proc.stdin], [], min(left, 0.5))  # type: ignore[union-attr]
            try:
                self._flush()
            except OSError:
                return
            self._relay()

    def _drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1:
            self.warn(
                "warning: W&B mirror is falling behind; metrics records are left out of W&B "
                "from now on (the run store has them all)"
            )

    def _relay(self) -> None:
        """Show the warning lines the mirror wrote."""
        if self.proc is None or self.proc.stdout is None:
            return
        chunks = [self._partial]
        while True:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        *lines, self._partial = b"".join(chunks).split(b"\n")
        for line in lines:
            if line.strip():
                self.reported = True
                self.warn(f"warning: {line.decode(errors='replace').strip()}")

    def _lost(self) -> None:
        """The mirror exited early: relay its last words, or say where its log is."""
        proc = self.proc
        if proc is not None:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:  # it closed its input but hangs: stop it
                self._kill()
            self._relay()
            if not self.reported:
                code = proc.returncode if proc.returncode is not None else "?"
                self._off(f"exited unexpectedly (exit status {code}); details in {self.log_path}")
        self._stop()

    def _off(self, why: str, after_last_cell: bool = False) -> None:
        goes_on = "" if after_last_cell else "; the matrix goes on without W&B"
        self.warn(f"warning: W&B mirror {why}{goes_on} (the run store is complete)")
        self.reported = True
        self._stop()

    def _kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def _stop(self) -> None:
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()  # type: ignore[union-attr]
        self.proc = None
