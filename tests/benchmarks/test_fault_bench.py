"""Figures of input validation (pytest-benchmark; skipped unless --benchmark-enable).

    .venv/bin/pytest tests/benchmarks/test_fault_bench.py --benchmark-enable -o addopts= -q -s

Target from issue 10: a YAML alias bomb is refused in well under a second, never expanded.
"""

from __future__ import annotations

import pytest

from harness.contracts.config import ConfigError
from harness.runner.matrix import load_matrix

LEVELS = 10
"""The bomb: 10 levels of 10 aliases each, 10**10 strings once expanded."""


def _bomb() -> str:
    lines = ['a0: &a0 ["l", "l", "l", "l", "l", "l", "l", "l", "l", "l"]']
    for i in range(1, LEVELS):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    return "\n".join([*lines, "matrix: {seed: [0]}", ""])


def test_an_alias_bomb_is_refused(benchmark, tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb())

    def refuse() -> str:
        with pytest.raises(ConfigError) as caught:
            load_matrix(path)
        return str(caught.value)

    message = benchmark(refuse)
    assert "alias bomb" in message
    print(
        f"\nrefuse an alias bomb of 10**{LEVELS} values: {benchmark.stats.stats.mean * 1000:.2f} ms"
    )
