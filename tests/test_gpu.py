"""CUDA paths: memory accounting per phase, the budget, autocast, attention modes on the GPU,
and every hf-vlm family (tiny folders of ``harness.models.tiny``) trained, self-checked and
measured on CUDA.

Marked ``gpu``: skipped by the default suite and in CI (no GPU there); run with ``make test-gpu``
on a CUDA machine. Without CUDA every test here is skipped with the reason "needs a CUDA device".
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
from harness.models.families import FAMILIES
from harness.models.tiny import write_tiny
from tests.cell_helpers import tiny_cell
from tests.models.helpers import captcha_batch, step_memory, vlm_cell
from tests.models.helpers import load as load_vlm

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


# ---------------------------------------------------------------- hf-vlm families on CUDA

FAMILY_NAMES = [f.name for f in FAMILIES]
BF16 = pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
    reason="needs a CUDA device with bf16",
)


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_vlms")
    return {name: write_tiny(name, root / name) for name in FAMILY_NAMES}


@BF16
@pytest.mark.parametrize("mode", ["causal", "image_bidirectional", "native"])
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_cell_trains_with_bf16_on_gpu(tmp_path, family_dirs, family, mode):
    """A whole hf-vlm cell on CUDA under bf16 autocast: the processor's extra tensors (grids,
    sizes, patch masks, token types) go to the device with the batch; memory per phase is CUDA's."""
    cfg = vlm_cell(
        tmp_path / "data",
        family_dirs[family],
        **{
            "attention": {"mode": mode, "impl": "sdpa"},
            "train.precision": "bf16",
            "checkpoint.save": "none",
            "runtime.device": "cuda",
        },
    )
    assert run_cell(parse_cell_config(cfg), tmp_path / "cell") == 0
    summary = read_summary(tmp_path / "cell" / "summary.json")
    assert summary["outcome"] == "completed", summary.get("error")
    memory = summary["memory"]
    assert memory["kind"] == "cuda"
    for phase in ("train", "eval"):
        assert 0 < memory[phase]["peak_bytes"] <= memory[phase]["reserved_bytes"]
    print(f"\n{family} {mode}: CUDA peak train {memory['train']['peak_bytes'] / 2**20:.1f} MiB")


@pytest.mark.parametrize("mode", ["causal", "image_bidirectional", "native"])
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_mask_self_check_on_gpu(family_dirs, family, mode):
    model = load_vlm(family_dirs[family])
    model.set_attention(mode, "sdpa")
    model.to("cuda")
    result = model.check_attention(mode, "sdpa")
    assert result.probes > 0 and not result.text_sees_future


@BF16
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_image_bidirectional_vs_causal_cuda_memory(family_dirs, family):
    """The CUDA peak of a steady-state bf16 training step (tests.models.helpers.step_memory):
    image-bidirectional (sdpa) vs causal, on one model and batch; goal <= 1.05x."""
    device = torch.device("cuda")
    model = load_vlm(family_dirs[family]).to(device)
    batch = captcha_batch(model).to(device)

    def bf16():
        return torch.autocast("cuda", dtype=torch.bfloat16)

    rows = {}
    for mode in ("causal", "image_bidirectional"):
        model.set_attention(mode, "sdpa")
        torch.cuda.empty_cache()
        rows[mode] = step_memory(model, batch, device, bf16)
    causal, bidir = rows["causal"], rows["image_bidirectional"]
    ratio = bidir["extra_bytes"] / causal["extra_bytes"]
    print(
        f"\n{family}: S={causal['seq_len']} x 4, bf16 step CUDA peak over start: causal "
        f"{causal['extra_bytes'] / 2**20:.2f} MiB, image_bidirectional "
        f"{bidir['extra_bytes'] / 2**20:.2f} MiB ({ratio:.3f}x)"
    )
    assert causal["kind"] == bidir["kind"] == "cuda"
    assert causal["extra_bytes"] > 0 and ratio <= 1.05
