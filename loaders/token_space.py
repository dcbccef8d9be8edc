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


def validate(space: dict[str, Any], path: Path) -> list[str]:
    """All problems of a token space at once (empty when valid)."""
    problems = []
    ranges = space.get("ranges")
    if not isinstance(ranges, dict) or "TEXT" not in ranges:
        return ["'ranges' must be an object with at least TEXT"]
    spans = []
    for name, r in ranges.items():
        try:
            start, end, size = int(r["start"]), int(r["end"]), int(r["size"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"range {name} needs integer start, end (inclusive), size")
            continue
        if end < start or size != end - start + 1:
            problems.append(f"range {name}: size {size} != end - start + 1 = {end - start + 1}")
        spans.append((start, end, name))
    spans.sort()
    for (_, e0, n0), (s1, _, n1) in itertools.pairwise(spans):
        if s1 <= e0:
            problems.append(f"ranges {n0} and {n1} overlap at {s1}")
    if int(ranges["TEXT"].get("start", -1)) != 0:
        problems.append("TEXT must start at 0")
    if spans and int(space.get("vocab_size_total", -1)) != max(e for _, e, _ in spans) + 1:
        problems.append(
            f"vocab_size_total {space.get('vocab_size_total')} != max(end) + 1 = {max(e for _, e, _ in spans) + 1}"
        )
    if int(space.get("text_vocab_size", -1)) != int(ranges["TEXT"].get("size", -2)):
        problems.append(
            f"text_vocab_size {space.get('text_vocab_size')} != TEXT size {ranges['TEXT'].get('size')}"
        )
    special = ranges.get("SPECIAL")
    for name, tid in (space.get("special_tokens") or {}).items():
        if special is None or not int(special["start"]) <= int(tid) <= int(special["end"]):
            problems.append(f"special token {name}={tid} outside the SPECIAL range")
    return problems


def load_token_space(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read, validate and hash-check a token space; returns ``(space, facts for the report)``.

    The hash is checked against ``token_space.sha256`` next to it when that file exists.
    """
    space = read_json(path)
    problems = validate(space, path)
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
        published = (
            sha_file.read_text().split()[0].strip().lower() if sha_file.read_text().strip() else ""
        )
        if published != digest:
            raise TokenSpaceHashError(
                path,
                f"sha256 {digest} does not match the published {published or '(empty)'} in {sha_file.name}",
                "the token space was edited or belongs to another dataset; use the matching token_space.json",
            )
        facts["hash_checked"] = True
    return space, facts


def pad_id(space: dict[str, Any]) -> int:
    """Pad id: ``special_tokens['<|pad_mm|>']`` else 0."""
    return int((space.get("special_tokens") or {}).get(PAD_TOKEN, 0))
