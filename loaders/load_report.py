"""What a load found and did: one dataclass, serialisable to JSON and readable as text."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

_WRAPPERS = {"model", "base_model", "foundation_model", "transformer", "text"}


def module_of(key: str) -> str:
    """Group a state-dict key under its top-level module (descending through wrapper names)."""
    parts = key.split(".")
    head = [parts[0]]
    i = 1
    while head[-1] in _WRAPPERS and i < len(parts) - 1:
        head.append(parts[i])
        i += 1
    return ".".join(head)


@dataclass
class KeyReport:
    """Key accounting of one tensor set applied onto a model."""

    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def per_module(self) -> dict[str, dict[str, int]]:
        """Counts of matched / missing / unexpected / mismatched keys per top-level module."""
        out: dict[str, dict[str, int]] = defaultdict(
            lambda: {"matched": 0, "missing": 0, "unexpected": 0, "mismatched": 0}
        )
        for kind in ("matched", "missing", "unexpected", "mismatched"):
            for key in getattr(self, kind):
                out[module_of(key)][kind] += 1
        return dict(sorted(out.items()))


@dataclass
class ProbeResult:
    """Logits of a fixed probe input before and after applying the checkpoint."""

    input_ids: list[int]
    before_available: bool
    max_abs_diff: float | None
    changed: bool | None
    finite: bool | None
    """Whether the probe's logits after loading are finite (None when no probe ran)."""
    note: str = ""


@dataclass
class LoadReport:
    """Everything a load found and did; ``to_dict``/``to_json`` for machines, ``str`` for people."""

    source: str
    path: str = ""
    format: str = ""
    reason: str = ""
    files: list[str] = field(default_factory=list)
    base_model: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, KeyReport] = field(default_factory=dict)
    extra_tensors: list[str] = field(default_factory=list)
    dtype: str | None = None
    device: str | None = None
    probe: ProbeResult | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def key_report(self, group: str) -> KeyReport:
        """The (created on demand) key accounting for one tensor group, e.g. ``lora``."""
        return self.keys.setdefault(group, KeyReport())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; key lists come with per-module counts."""
        d = asdict(self)
        d["keys"] = {
            name: {**asdict(kr), "per_module": kr.per_module()} for name, kr in self.keys.items()
        }
        return d

    def to_json(self, indent: int = 2) -> str:
        """Deterministic JSON text of ``to_dict``."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, default=str)

    def __str__(self) -> str:
        lines = [
            f"source:   {self.source}",
            f"path:     {self.path}",
            f"format:   {self.format} ({self.reason})",
            f"files:    {', '.join(self.files) or '-'}",
            f"base:     {self.base_model or '-'}",
        ]
        if self.hyperparameters:
            hp = ", ".join(f"{k}={v}" for k, v in sorted(self.hyperparameters.items()))
            lines.append(f"params:   {hp}")
        for group, kr in self.keys.items():
            lines.append(
                f"keys[{group}]: matched {len(kr.matched)}, missing {len(kr.missing)}, "
                f"unexpected {len(kr.unexpected)}, shape-mismatched {len(kr.mismatched)}"
            )
            for mod, c in kr.per_module().items():
                counts = " ".join(f"{k}={v}" for k, v in c.items() if v)
                lines.append(f"    {mod}: {counts}")
        if self.extra_tensors:
            lines.append(
                f"extra:    {len(self.extra_tensors)} tensors kept in loaded.extra_tensors"
            )
        if self.dtype:
            lines.append(f"dtype:    {self.dtype} on {self.device}")
        if self.probe is not None:
            p = self.probe
            if p.before_available:
                verdict = "CHANGED the model" if p.changed else "did NOT change the model"
                lines.append(
                    f"probe:    checkpoint {verdict} (max |dlogit| = {p.max_abs_diff:.3g})"
                )
            else:
                lines.append(f"probe:    {p.note or 'no base to compare'}")
        lines += [f"note:     {n}" for n in self.notes]
        lines += [f"WARNING:  {w}" for w in self.warnings]
        return "\n".join(lines)
