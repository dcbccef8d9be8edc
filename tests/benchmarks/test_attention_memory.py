"""Peak memory of one forward + backward at the seed's length, per attention mode, side by side.

Run: ``pytest tests/benchmarks/test_attention_memory.py -m slow --benchmark-enable -q -s``.
Each (mode, impl) runs in a fresh subprocess so peaks don't mix; the ratios vs causal/sdpa land
in ``benchmark.extra_info``. No timing thresholds: only the qualitative outcome is asserted.
"""

from __future__ import annotations

import pytest

from harness.tools.memory_probe import format_table, measure_memory

SHAPE = {"layers": 4, "hidden": 1024, "heads": 32, "prefix": 730, "text": 32}


@pytest.mark.slow
def test_attention_memory(benchmark) -> None:
    rows = benchmark.pedantic(measure_memory, kwargs=SHAPE, rounds=1, iterations=1)
    print(f"\n{SHAPE}\n{format_table(rows)}")
    benchmark.extra_info.update(SHAPE)
    for r in rows:
        key = f"{r['mode']}/{r['impl']}"
        benchmark.extra_info[f"{key} extra_mb"] = round(r["extra_mb"], 1)
        benchmark.extra_info[f"{key} ratio"] = round(r["ratio"], 3)
    by = {(r["mode"], r["impl"]): r["extra_mb"] for r in rows}
    # Behavioural at this size: eager keeps every layer's S x S scores for backward, SDPA does not.
    assert by["prefix_bidirectional", "eager_dense"] > 1.3 * by["prefix_bidirectional", "sdpa"]
    assert by["prefix_bidirectional", "eager_dense"] > 1.3 * by["causal", "sdpa"]
