"""Short, unique labels for configurations, built from the axes that vary (display and plots).

A configuration is a sequence of groups, one per axis; a group holds the ``(dotted key, value)``
parts that vary together (one part for a plain axis, several for a paired axis). A label shows,
per axis that varies, only the parts needed to tell its options apart, joined by ``·``, and
joins axes with `` | ``: ``causal·sdpa | ga4``. Long string values are shortened to the fewest
leading words that stay unique (``prefix_bidirectional`` next to ``causal`` reads ``prefix``),
paths to their last component, and anything still long is elided in the middle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Part = tuple[str, Any]
Group = tuple[Part, ...]

PART_SEP = "·"
GROUP_SEP = " | "
ELLIPSIS = "…"
MAX_VALUE = 22
"""Characters of one value's text before it is elided in the middle."""
MIN_WORDS_CHARS = 5
"""A value shortened to its first words keeps at least this many characters."""
FORMATS = {
    "grad_accum": "ga{}",
    "micro_batch": "mb{}",
    "max_steps": "{} steps",
    "max_seconds": "{}s cap",
    "seed": "seed {}",
    "lr": "lr {}",
    "memory_budget_gb": "{} GB",
    "num_layers": "{} layers",
    "hidden_size": "h{}",
    "r": "r{}",
}
"""How a number is written, by the last component of its key (others: ``key=value``)."""
_WORD = re.compile(r"[^_\-\s]+[_\-\s]*")


def value_text(key: str, value: Any) -> str:
    """One part as text: strings stand alone, numbers and flags carry a short key."""
    name = key.rsplit(".", 1)[-1]
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return name if value else f"no {name}"
    if isinstance(value, float):
        value = f"{value:g}"
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
        return ",".join(items) if len(items) <= 3 else f"{items[0]}…{items[-1]} ({len(items)})"
    if value is None:
        return f"{name}=none"
    return FORMATS.get(name, name + "={}").format(value)


def elide(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters in the middle (``head…tail``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    head = width // 2
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head) :]


def _shorten(texts: list[str], words_too: bool) -> dict[str, str]:
    """Map each distinct text to a short form that is still unique among ``texts``: paths to
    their last component and strings to their first words (``words_too``), then elided."""
    distinct = sorted(set(texts))
    out = dict(zip(distinct, distinct, strict=True))
    if len(distinct) < 2:
        return {t: elide(t, MAX_VALUE) for t in distinct}
    if words_too and all("/" in t for t in distinct):  # paths: their last component, when unique
        tails = {t: t.rstrip("/").rsplit("/", 1)[-1] for t in distinct}
        if len(set(tails.values())) == len(distinct):
            out = tails
    words = {t: _WORD.findall(out[t]) if words_too else [out[t]] for t in distinct}
    for t in distinct:
        for n in range(1, len(words[t])):
            short = "".join(words[t][:n]).rstrip("_- ")
            clash = any("".join(words[o][:n]).rstrip("_- ") == short for o in distinct if o != t)
            if len(short) >= MIN_WORDS_CHARS and not clash:
                out[t] = short
                break
    elided = {t: elide(s, MAX_VALUE) for t, s in out.items()}
    if len(set(elided.values())) == len(distinct):
        out = elided
    return out


def _chosen_keys(groups: list[Group]) -> list[str]:
    """Keys of the parts that tell the distinct groups apart, in order, fewest first found."""
    values = list({repr(g): dict(g) for g in groups}.values())
    keys = list(dict.fromkeys(k for v in values for k in v))
    varying = [k for k in keys if len({repr(v.get(k)) for v in values}) > 1]
    chosen: list[str] = []
    for key in varying:
        chosen.append(key)
        if len({tuple(repr(v.get(k)) for k in chosen) for v in values}) == len(values):
            break
    return chosen


def axis_texts(groups: Sequence[Group]) -> list[str]:
    """Text of one axis for each configuration ('' where the axis does not vary or is unset)."""
    groups = [tuple(g) for g in groups]
    texts: list[list[str]] = [[] for _ in groups]
    for key in _chosen_keys(groups):
        values = [dict(g).get(key) for g in groups]
        raw = [
            value_text(key, v) if key in dict(g) else ""
            for g, v in zip(groups, values, strict=True)
        ]
        words_too = all(isinstance(v, str | bool) for v in values if v is not None)
        short = _shorten([r for r in raw if r], words_too)
        for i, r in enumerate(raw):
            if r:
                texts[i].append(short[r])
    return [PART_SEP.join(t) for t in texts]


def short_labels(rows: Sequence[Sequence[Group]], empty: str = "all") -> list[str]:
    """One label per configuration (rows of groups, aligned by position: group i = axis i)."""
    width = max((len(r) for r in rows), default=0)
    columns = [axis_texts([r[i] if i < len(r) else () for r in rows]) for i in range(width)]
    labels = []
    for i in range(len(rows)):
        parts = [col[i] for col in columns if col[i]]
        labels.append(GROUP_SEP.join(parts) or empty)
    return labels


def axes_groups(axes: Mapping[str, Any], paired: Mapping[str, Sequence[str]]) -> list[Group]:
    """Groups of one cell's ``axes`` (dotted key -> value): paired keys together, in order."""
    group_of = {k: label for label, keys in paired.items() for k in keys}
    groups: dict[str, list[Part]] = {}
    for key, value in axes.items():
        groups.setdefault(group_of.get(key, key), []).append((key, value))
    return [tuple(parts) for parts in groups.values()]


def aligned(rows: Sequence[list[Group]]) -> list[list[Group]]:
    """Rows of groups re-aligned by the first key of each group (cells of one matrix can set
    different axes, e.g. through ``include``); a missing group is empty."""
    order = list(dict.fromkeys(g[0][0] for row in rows for g in row if g))
    out = []
    for row in rows:
        by_key = {g[0][0]: g for g in row if g}
        out.append([by_key.get(k, ()) for k in order])
    return out
