"""Atomic writes and validated reads of the run-store files that ``harness/contracts/schema.py`` defines.

Writers hand over the schema's dataclasses (``write_json``, ``jsonl_line``); readers get plain
mappings back, checked against those dataclasses (``harness/contracts/validate.py``), or a ``SchemaError``
naming the file, line and key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.contracts.schema import (
    OUTCOMES,
    RECORD_KINDS,
    Prediction,
    ResumeManifest,
    SchemaError,
    Summary,
)
from harness.contracts.validate import check_fields

# --------------------------------------------------------------------------- writing


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temp file in the same directory + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_json(record: Any) -> Any:
    """Plain JSON data of a record (a dataclass, or data already plain)."""
    return dataclasses.asdict(record) if dataclasses.is_dataclass(record) else record


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Atomically write a record (dataclass or plain data) as sorted, indented JSON."""
    text = json.dumps(to_json(data), indent=2, sort_keys=True, default=str)
    atomic_write_text(path, text + "\n")


def jsonl_line(record: Any) -> str:
    """One JSONL line (with its newline) for a record."""
    return json.dumps(to_json(record), sort_keys=True) + "\n"


# --------------------------------------------------------------------------- reading


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(f"{path}: unreadable ({exc})") from None


def _valid(
    cls: type, data: Any, where: str, require: bool = True, what: str = ""
) -> dict[str, Any]:
    """``data`` if it fits ``cls``; else SchemaError ``"{where}: {what}{first problem}"``."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: {what}expected a JSON object, got {type(data).__name__}")
    problems = check_fields(cls, data, require=require)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SchemaError(f"{where}: {what}{problems[0]}{more}")
    return data


def read_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The one reader of summary.json: the validated mapping (types checked, unknown keys
    allowed), or SchemaError naming the file and the key."""
    where = str(path)
    data = _valid(Summary, _load_json(Path(path)), where, what="not a summary: ")
    if data["outcome"] not in OUTCOMES:
        raise SchemaError(f"{where}: not a summary: unknown `outcome` {data['outcome']!r}")
    metrics = data.get("metrics") or {}
    k, n = metrics.get("exact_match_k"), metrics.get("n")
    if (n is not None and n < 0) or (k is not None and n is not None and not 0 <= k <= n):
        raise SchemaError(
            f"{where}: not a summary: `metrics.exact_match_k` {k} is not within 0..`metrics.n` {n}"
        )
    return data


def read_jsonl(path: str | os.PathLike[str], kinds: dict[str, type] | type) -> list[dict[str, Any]]:
    """Read a JSONL file written by the harness, each line validated: against ``kinds`` (one
    record class), or the class its ``kind`` names (a dict of kind -> class; other kinds are
    kept unchecked). A torn last line (a killed writer) is skipped; any other bad line raises
    SchemaError naming ``file:line``. A missing file reads as no records."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: unreadable ({exc})") from None
    lines = text.splitlines()
    try:  # one parse for the whole file (fast on large stores); line by line to locate a fault
        records = json.loads("[" + ",".join(ln for ln in lines if ln.strip()) + "]")
        return [_checked(kinds, r, str(path)) for r in records]
    except (json.JSONDecodeError, SchemaError):
        pass
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(parse_line(line, kinds, f"{path}:{i + 1}"))
        except SchemaError:
            if i == len(lines) - 1 and not text.endswith("\n"):
                break  # torn final line of a killed process
            raise
    return out


def parse_line(line: str | bytes, kinds: dict[str, type] | type, where: str) -> dict[str, Any]:
    """One JSONL line, validated as in ``read_jsonl``; SchemaError naming ``where``."""
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SchemaError(f"{where}: not valid JSON") from None
    return _checked(kinds, data, where)


def _checked(kinds: dict[str, type] | type, data: Any, where: str) -> dict[str, Any]:
    """``data`` validated against ``kinds`` (a class, or the class its ``kind`` names)."""
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: expected a JSON object, got {type(data).__name__}")
    cls = kinds if isinstance(kinds, type) else kinds.get(data.get("kind"))
    return _valid(cls, data, where, require=False) if cls else data


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """metrics.jsonl: train and eval records, validated."""
    return read_jsonl(path, RECORD_KINDS)


def read_predictions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """predictions.jsonl, validated."""
    return read_jsonl(path, Prediction)


def read_resume_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """resume/resume.json, validated (``ResumeManifest``), or SchemaError naming the file: the
    one check the runner makes (torch-free); the cell also verifies the files it names."""
    where = str(path)
    data = _valid(ResumeManifest, _load_json(Path(path)), where, what="not a resume point: ")
    if not 0 < data["step"] <= data["steps_planned"] or data["metrics_bytes"] < 0:
        raise SchemaError(
            f"{where}: not a resume point: `step` {data['step']} is not within "
            f"1..`steps_planned` {data['steps_planned']}"
        )
    return data
