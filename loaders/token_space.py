"""``token_space.json`` (seed 003): validation and its published sha256."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

from loaders.errors import TokenSpaceError, TokenSpaceHashError
from loaders.io import read_json

TOKEN_SPACE = "token_space.json"
TOKEN_SPACE_SHA = "token_space.sha256"
PAD_TOKEN = "<|pad_mm|>"


def token_space_hash(space: dict[str, Any]) -> str:
    """sha256 of ``json.dumps(space, sort_keys=True)`` (default separators), as the trainer wrote it."""
    return hashlib.sha256(json.dumps(space, sort_keys=True).encode("utf-8")).hexdigest()


def _int(value: Any) -> int | None:
    """An integer field of a token space (JSON ints only; None for anything else)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def validate(space: dict[str, Any]) -> list[str]:
    """All problems of a token space at once (empty when valid); values of the wrong type are
    problems, never exceptions."""
    problems = []
    ranges = space.get("ranges")
    if not isinstance(ranges, dict) or not isinstance(ranges.get("TEXT"), dict):
        return ["'ranges' must be an object with at least TEXT"]
    spans: dict[str, tuple[int, int]] = {}
    for name, r in ranges.items():
        bounds = [_int(r.get(k)) if isinstance(r, dict) else None for k in ("start", "end", "size")]
        start, end, size = bounds
        if start is None or end is None or size is None:
            problems.append(f"range {name} needs integer start, end (inclusive), size")
            continue
        if end < start or size != end - start + 1:
            problems.append(f"range {name}: size {size} != end - start + 1 = {end - start + 1}")
        spans[name] = (start, end)
    ordered = sorted((s, e, n) for n, (s, e) in spans.items())
    for (_, e0, n0), (s1, _, n1) in itertools.pairwise(ordered):
        if s1 <= e0:
            problems.append(f"ranges {n0} and {n1} overlap at {s1}")
    text = ranges["TEXT"]
    if _int(text.get("start")) != 0:
        problems.append("TEXT must start at 0")
    top = max((e for _, e, _ in ordered), default=None)
    if top is not None and _int(space.get("vocab_size_total")) != top + 1:
        problems.append(
            f"vocab_size_total {space.get('vocab_size_total')!r} != max(end) + 1 = {top + 1}"
        )
    if _int(space.get("text_vocab_size")) is None or space["text_vocab_size"] != _int(
        text.get("size")
    ):
        problems.append(
            f"text_vocab_size {space.get('text_vocab_size')!r} != TEXT size {text.get('size')!r}"
        )
    specials = space.get("special_tokens") or {}
    if not isinstance(specials, dict):
        return [*problems, "'special_tokens' must be an object (name -> id)"]
    low, high = spans.get("SPECIAL", (None, None))
    for name, tid in specials.items():
        if low is None or _int(tid) is None or not low <= tid <= high:
            problems.append(f"special token {name}={tid!r} outside the SPECIAL range")
    return problems


def load_token_space(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read, validate and hash-check a token space; returns ``(space, facts for the report)``.

    The hash is checked against ``token_space.sha256`` next to it when that file exists.
    """
    space = read_json(path)
    problems = validate(space)
    if problems:
        raise TokenSpaceError(
            path,
            "invalid token space: " + "; ".join(problems),
            "fix or re-generate token_space.json",
        )
    digest = token_space_hash(space)
    facts: dict[str, Any] = {"token_space_sha256": digest, "hash_checked": False}
    sha_file = path.with_name(TOKEN_SPACE_SHA)
    if sha_file.is_file():
        _check_published(path, digest, sha_file)
        facts["hash_checked"] = True
    return space, facts


def _published(sha_file: Path) -> str:
    """The digest in a ``token_space.sha256`` (``<hex>  token_space.json``); '' when empty."""
    try:
        words = sha_file.read_text(encoding="utf-8", errors="replace").split()
    except OSError as exc:
        raise TokenSpaceError(
            sha_file, f"cannot be read ({exc.strerror})", "fix its permissions"
        ) from exc
    return words[0].strip().lower() if words else ""


def _check_published(path: Path, digest: str, sha_file: Path) -> None:
    published = _published(sha_file)
    if published != digest:
        raise TokenSpaceHashError(
            path,
            f"sha256 {digest} does not match the published {published or '(empty)'} in {sha_file}",
            "the token space was edited or belongs to another dataset; use the matching token_space.json",
        )


def resolve_token_space(d: Path) -> tuple[Path, dict[str, Any], dict[str, Any]] | None:
    """The token space of the checkpoint in ``d``: ``d/token_space.json``, else the run
    directory's (``d.parent``). The seed's layout keeps one in each: when both exist they must be
    the same token space, and a ``token_space.sha256`` in either place must match it; otherwise
    ``TokenSpaceError`` names both files. Returns ``(path, space, facts)``, or None."""
    found = [p for p in (d / TOKEN_SPACE, d.parent / TOKEN_SPACE) if p.is_file()]
    if not found:
        return None
    loaded = [(p, *load_token_space(p)) for p in found]
    path, space, facts = loaded[0]
    digest = facts["token_space_sha256"]
    if len(loaded) == 2 and loaded[1][2]["token_space_sha256"] != digest:
        other, other_digest = loaded[1][0], loaded[1][2]["token_space_sha256"]
        raise TokenSpaceError(
            path,
            f"differs from {other} (sha256 {digest[:12]}... vs {other_digest[:12]}...)",
            "keep only the token_space.json this checkpoint was trained with",
        )
    facts["hash_checked"] = any(f["hash_checked"] for _, _, f in loaded)  # the same space
    for sha_file in (d / TOKEN_SPACE_SHA, d.parent / TOKEN_SPACE_SHA):
        if sha_file.is_file() and not sha_file.with_name(TOKEN_SPACE).is_file():
            _check_published(path, digest, sha_file)  # a hash published beside no json
            facts["hash_checked"] = True
    return path, space, facts


def pad_id(space: dict[str, Any]) -> int:
    """Pad id: ``special_tokens['<|pad_mm|>']`` else 0."""
    return int((space.get("special_tokens") or {}).get(PAD_TOKEN, 0))
