"""CUDA paths: memory accounting per phase, the budget, autocast, attention modes on the GPU.

Marked ``gpu``: skipped by the default suite and in CI (no GPU there); run with ``make test-gpu``
on a CUDA machine.
"""

from __future__ import annotations

import pytest
import torch

from harness.cell.attention import self_check
from harness.cell.memory import PeakMeter, apply_budget, is_oom
from harness.cell.run import run_cell
from harness.contracts.config import parse_cell_config
from harness.contracts.store_files import read_summary
from harness.models import build_model
from tests.cell_helpers import tiny_cell

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_phase_memory_resets_between_phases():
    mem = PeakMeter(torch.device("cuda"))
    mem.start()
    big = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    first = mem.peak()["peak_bytes"]
    del big
    torch.cuda.empty_cache()
    mem.start()
    small = torch.empty(2**20, dtype=torch.uint8, device="cuda")
    second = mem.peak()["peak_bytes"]
    del small
    assert first >= 256 * 2**20 > second


@pytest.mark.parametrize(
    ("mode", "impl"),
    [("causal", "sdpa"), ("prefix_bidirectional", "sdpa"), ("prefix_bidirectional", "eager_dense")],
)
def test_attention_self_check_on_gpu(tmp_path, mode, impl):
    cfg = parse_cell_config(tiny_cell(tmp_path, attention__mode=mode, attention__impl=impl))
    model, _ = build_model(cfg.model)
    model.set_attention(mode, impl)
    model.to("cuda")
    assert self_check(model.base_decoder(), mode, impl, prefix_len=model.prefix_len()).probes > 0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cell_trains_with_autocast_on_gpu(tmp_path, precision):
    cfg = parse_cell_config(
        tiny_cell(tmp_path / "d", train__precision=precision, runtime__device="cuda")
    )
    assert run_cell(cfg, tmp_path / "cell") == 0
    summary = read_summary(tmp_path / "cell" / "summary.json")
    assert summary["outcome"] == "completed"
    assert summary["memory"]["kind"] == "cuda"
    assert summary["memory"]["train"]["reserved_bytes"] >= summary["memory"]["train"]["peak_bytes"]


def test_budget_makes_a_real_cuda_oom():
    device = torch.device("cuda")
    apply_budget(0.5, device)
    try:
        with pytest.raises(torch.OutOfMemoryError) as info:
            torch.empty(2 * 2**30, dtype=torch.uint8, device=device)
        assert is_oom(info.value)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
