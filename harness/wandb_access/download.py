"""The child process that talks to W&B: ``python -m harness.wandb_access.download REQUEST_JSON``.

Run only by ``fetch.download_artifact`` under a hard wall-clock limit, with stdin closed (so
wandb can never prompt for a login) and the API key in the environment (never on the command
line). It resolves the reference with ``wandb.Api(api_key, timeout=...)``, downloads into a
private partial folder, verifies every file against the manifest (size, and md5 where the
manifest records one), writes the completion marker, then renames the folder into place. It
prints one ``RESULT {json}`` line and leaves with ``os._exit``: wandb-core's teardown can wait
without a timeout (shared/reference/wandb.md), and nothing is left to flush by then.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from harness.contracts.store_files import atomic_write_text

RESULT_PREFIX = "RESULT "
MARKER = ".download-complete.json"
"""Written inside an artifact folder after every file was verified; its absence means the folder
may be partial and is never used as a local copy."""
PARTIAL_DIR = ".partial"


def md5_b64(path: Path) -> str:
    """Base64 md5 of a file, the digest W&B manifests record for files."""
    h = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return base64.b64encode(h.digest()).decode()


def _is_md5_b64(digest: str) -> bool:
    return len(digest) == 24 and digest.endswith("==")


def verify(folder: Path, entries: dict[str, tuple[int | None, str | None]]) -> list[str]:
    """Problems with the downloaded files: missing, wrong size, wrong md5 (empty = complete)."""
    problems = []
    for name, (size, digest) in sorted(entries.items()):
        f = folder / name
        if not f.is_file():
            problems.append(f"{name} is missing")
        elif size is not None and f.stat().st_size != size:
            problems.append(f"{name} has {f.stat().st_size} of {size} bytes")
        elif digest and _is_md5_b64(digest) and md5_b64(f) != digest:
            problems.append(f"{name} does not match its md5 in the manifest")
    return problems


def write_marker(folder: Path, info: dict[str, Any]) -> None:
    """The completion marker (atomic): what was downloaded, verified how, and the metadata."""
    atomic_write_text(folder / MARKER, json.dumps(info, indent=2, sort_keys=True) + "\n")


def _classify(exc: BaseException) -> str:
    """Failure kind of a wandb/requests exception (fetch.py turns it into one clear line)."""
    from wandb.errors import AuthenticationError, CommError, UsageError

    text = str(exc)
    if isinstance(exc, UsageError):
        return "no_key" if "key" in text.lower() or "log in" in text.lower() else "usage"
    if isinstance(exc, AuthenticationError):
        unreachable = ("did not respond", "failed to execute", "connection", "timeout")
        return "unreachable" if any(s in text.lower() for s in unreachable) else "unauthorized"
    if isinstance(exc, CommError):
        return "not_found" if "not found" in text.lower() else "server_error"
    return "interrupted"


def _download(req: dict[str, Any]) -> dict[str, Any]:
    import wandb

    key = os.environ.get("WANDB_API_KEY") or None
    overrides = {"base_url": req["base_url"]} if req.get("base_url") else None
    api = wandb.Api(api_key=key, timeout=int(req["timeout"]), overrides=overrides)
    art = api.artifact(req["ref"])
    root = Path(req["root"])
    final = root / art.name  # wandb's own layout: name:vN (the resolved version)
    meta = dict(art.metadata or {})
    info = {
        "reference": f"{art.entity}/{art.project}/{art.name}",
        "requested": req["ref"],
        "version": art.version,
        "metadata": meta,
        "type": art.type,
    }
    if (final / MARKER).is_file():
        return {"ok": True, "path": str(final), "reused": True, **info}
    entries = {
        name: (e.size, e.digest if e.ref is None else None)
        for name, e in art.manifest.entries.items()
    }
    partial = root / PARTIAL_DIR / f"{art.name}.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    art.download(root=str(partial), skip_cache=True)
    problems = verify(partial, entries)
    if problems:
        return {"ok": False, "kind": "interrupted", "message": "; ".join(problems[:3]), **info}
    write_marker(
        partial,
        {
            **info,
            "files": {n: s for n, (s, _) in sorted(entries.items())},
            "verified": "size and md5 of every file against the manifest",
            "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wandb": wandb.__version__,
        },
    )
    if final.exists():  # a folder without a marker: an earlier partial or foreign download
        final.rename(final.with_name(f"{final.name}.incomplete-{int(time.time())}"))
    partial.rename(final)
    return {"ok": True, "path": str(final), "reused": False, **info}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the child: one RESULT line on stdout, then ``os._exit``.

    wandb, requests and OS errors are reported to the parent as a kind + message; anything else
    is a bug and keeps its traceback (stderr, which the parent shows).
    """
    import requests
    from wandb.errors import Error as WandbError

    req = json.loads((argv or sys.argv[1:])[0])
    try:
        result = _download(req)
    except (WandbError, requests.RequestException) as exc:
        result = _failure(_classify(exc), exc)
    except OSError as exc:
        result = _failure("io", exc)
    except ValueError as exc:  # wandb's own argument checks (e.g. a malformed name)
        result = _failure("bad_reference", exc)
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0 if result.get("ok") else 3)


def _failure(kind: str, exc: BaseException) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "message": " ".join(str(exc).split())[:400]}


if __name__ == "__main__":
    main()
