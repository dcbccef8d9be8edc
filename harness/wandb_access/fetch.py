"""Get a W&B model artifact onto this machine: a verified local copy first, else a download.

Local first: ``--artifacts_dir``, ``$WANDB_ARTIFACT_DIR``, ``./artifacts``, for an immutable
``vN`` whose folder (``name:vN``, wandb's own layout) holds the completion marker that
``download.py`` writes after verifying every file. Otherwise the W&B API, in a child process
(``python -m harness.wandb_access.download``) with stdin closed (never a login prompt), an
explicit per-request timeout, and a hard wall-clock limit after which the whole process group
is killed (wandb-core can hang at exit). Each failure raises ``FetchError``: one line naming the
reference, the local paths tried and the fix.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import EXIT_BAD_INPUT, EXIT_FAILED, UserError
from harness.contracts.paths import with_repo_on_path
from harness.wandb_access.download import MARKER, RESULT_PREFIX
from harness.wandb_access.env import wandb_env
from harness.wandb_access.refs import ArtifactRef

ENV_ARTIFACT_DIR = "WANDB_ARTIFACT_DIR"
DEFAULT_ROOT = Path("artifacts")
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_LIMIT_S = 3600.0
_INPUT_KINDS = {"no_key", "unauthorized", "not_found", "bad_reference", "usage"}


class FetchError(UserError):
    """The artifact could not be had; ``str()`` is the one line to print, ``exit_code`` 2 (bad
    input: no key, unauthorized, not found) or 1 (the fetch failed: unreachable, interrupted)."""

    def __init__(self, ref: str, problem: str, tried: list[str], fix: str, kind: str) -> None:
        self.kind = kind
        self.exit_code = EXIT_BAD_INPUT if kind in _INPUT_KINDS else EXIT_FAILED
        looked = "; ".join(tried) if tried else "none"
        super().__init__(
            f"W&B artifact '{ref}': {problem}. Local copies looked for: {looked}. Fix: {fix}"
        )


@dataclass
class FetchedArtifact:
    """An artifact folder ready to load, and where it came from."""

    ref: ArtifactRef
    path: Path
    reference: str
    """Resolved ``entity/project/name:vN``."""
    version: str | None
    metadata: dict[str, Any]
    origin: str
    """``local copy`` (verified earlier, no network used) or ``downloaded``."""
    tried: list[str] = field(default_factory=list)


def artifact_roots(artifacts_dir: str | Path | None = None) -> list[Path]:
    """Where local copies may be, in order: the flag, ``$WANDB_ARTIFACT_DIR``, ``./artifacts``."""
    roots = [artifacts_dir, os.environ.get(ENV_ARTIFACT_DIR), DEFAULT_ROOT]
    out: list[Path] = []
    for r in roots:
        if r and Path(r).expanduser().absolute() not in out:
            out.append(Path(r).expanduser().absolute())
    return out


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The completion marker of a folder whose listed files are all present at their sizes."""
    try:
        info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = info.get("files") if isinstance(info, dict) else None
    if not isinstance(files, dict):
        return None
    for name, size in files.items():
        f = folder / name
        if not f.is_file() or (isinstance(size, int) and f.stat().st_size != size):
            return None
    return info


def _same_source(ref: ArtifactRef, reference: str) -> bool:
    """The marker's ``entity/project/name`` agrees with what the reference names."""
    parts = reference.rsplit(":", 1)[0].split("/")
    entity, project = (parts[0], parts[1]) if len(parts) == 3 else (None, None)
    return (ref.entity in (None, entity)) and (ref.project in (None, project))


def find_local(ref: ArtifactRef, roots: list[Path]) -> tuple[FetchedArtifact | None, list[str]]:
    """A verified local copy of an immutable version, and the descriptions of what was tried."""
    tried: list[str] = []
    if not ref.immutable:
        alias = ref.alias or "latest"
        tried.append(f"none used: alias '{alias}' can move, only a version (vN) is reused")
        return None, tried
    for root in roots:
        folder = root / str(ref.dirname)
        info = read_marker(folder) if folder.is_dir() else None
        if info is None:
            state = (
                "not verified (no completion marker, or a file changed since)"
                if folder.is_dir()
                else "absent"
            )
            tried.append(f"{folder} ({state})")
            continue
        if not _same_source(ref, str(info.get("reference", ""))):
            tried.append(f"{folder} (holds {info.get('reference')}, another project)")
            continue
        found = FetchedArtifact(
            ref,
            folder,
            f"{info.get('reference')}",
            info.get("version"),
            dict(info.get("metadata") or {}),
            "local copy",
            [*tried, f"{folder} (complete)"],
        )
        return found, found.tried
    return None, tried


def _child_env(root: Path) -> dict[str, str]:
    env = with_repo_on_path(os.environ)
    env.update(wandb_env(root / ".wandb"))
    env.setdefault("WANDB_SILENT", "true")
    return env


def _run_child(request: dict[str, Any], env: dict[str, str], limit_s: float) -> tuple[dict, str]:
    """(RESULT dict or {}, stderr tail); kills the child's process group at ``limit_s``."""
    cmd = [sys.executable, "-m", "harness.wandb_access.download", json.dumps(request)]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        result = _parse_result(out)
        return (result or {"ok": False, "kind": "time_limit", "message": ""}), err
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    result = _parse_result(out)
    if not result:
        tail = " | ".join(err.strip().splitlines()[-3:])
        result = {"ok": False, "kind": "bug", "message": tail or f"exit status {proc.returncode}"}
    return result, err


def _parse_result(out: str) -> dict[str, Any]:
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return {}


def _fix(kind: str, url: str, timeout_s: float, limit_s: float) -> tuple[str, str]:
    """(problem, fix) for each failure kind."""
    offline = "or copy a complete download of a version (name:vN) into --artifacts_dir"
    table = {
        "no_key": (
            "no W&B API key is configured",
            f"set WANDB_API_KEY (or run `wandb login` once), {offline}",
        ),
        "unauthorized": (
            f"{url} refused the API key",
            "check WANDB_API_KEY and that it belongs to the server in WANDB_BASE_URL",
        ),
        "not_found": (
            "not found on the server",
            "check the entity, project, name and version (the W&B UI lists them)",
        ),
        "unreachable": (
            f"no answer from {url} within {timeout_s:g} s",
            f"check the network or WANDB_BASE_URL, raise --wandb_timeout, {offline}",
        ),
        "interrupted": (
            "the download was interrupted or incomplete",
            "run the command again (the partial folder is never used)",
        ),
        "time_limit": (
            f"the download did not finish within {limit_s:g} s and was stopped",
            "raise --download_limit, or download once and pass --artifacts_dir",
        ),
        "io": ("could not write the download", "check free space and permissions of the folder"),
        "bad_reference": ("W&B rejected the reference", "use [entity/][project/]name[:alias]"),
    }
    return table.get(kind, ("the download failed unexpectedly (a bug)", "report this output"))


def fetch_artifact(
    ref: ArtifactRef,
    *,
    artifacts_dir: str | Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    limit_s: float = DEFAULT_LIMIT_S,
    base_url: str | None = None,
) -> FetchedArtifact:
    """A verified local copy of ``ref``, else a download into the first root. Raises FetchError."""
    roots = artifact_roots(artifacts_dir)
    found, tried = find_local(ref, roots)
    if found is not None:
        return found
    url = base_url or os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    root = roots[0]
    request = {"ref": str(ref), "root": str(root), "timeout": timeout_s, "base_url": base_url}
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(str(ref), f"cannot create {root} ({e.strerror})", tried, "", "io") from e
    result, _ = _run_child(request, _child_env(root), limit_s)
    if not result.get("ok"):
        kind = str(result.get("kind"))
        problem, fix = _fix(kind, url, timeout_s, limit_s)
        detail = result.get("message")
        raise FetchError(str(ref), f"{problem} ({detail})" if detail else problem, tried, fix, kind)
    path = Path(result["path"])
    return FetchedArtifact(
        ref,
        path,
        f"{result['reference']}",
        result.get("version"),
        dict(result.get("metadata") or {}),
        "downloaded" if not result.get("reused") else "local copy",
        [*tried, f"{path} ({'downloaded' if not result.get('reused') else 'complete'})"],
    )
