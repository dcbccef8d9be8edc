"""Round trip through the REAL harness writer (harness/cell/checkpoints.py, harness/cell/run.py).

Two strengths of proof:
- in memory: build the tiny-vlm with harness APIs, train a few steps by hand, write it with
  ``save_checkpoint``; ``load_checkpoint`` must give the same logits (image path included);
- a real cell: ``run_cell`` trains and writes ``ckpt/``; the reference model is rebuilt
  independently (``base_init_seed`` + ``build_model`` + the harness's own reader of its files).
"""

from __future__ import annotations

import json

import pytest
import torch

harness_models = pytest.importorskip("harness.models")
from safetensors import safe_open  # noqa: E402

from harness.cell.checkpoints import save_checkpoint  # noqa: E402
from harness.cell.trainable import setup_trainable  # noqa: E402
from harness.contracts.config import ModelConfig, parse_cell_config  # noqa: E402
from loaders import load_checkpoint  # noqa: E402
from loaders.probe import probe_inputs  # noqa: E402
from tests.cell_helpers import tiny_cell  # noqa: E402

ATOL = 1e-5


@torch.no_grad()
def _logits(model, inputs) -> torch.Tensor:
    model.eval()
    return model(**inputs).logits.float()


def _inputs(model) -> dict[str, torch.Tensor]:
    """Image prefix + text, with a pixel tensor: vision and projector weights count."""
    inputs = probe_inputs(model)
    assert "pixel_values" in inputs
    return inputs


def _train_by_hand(model, steps: int = 3) -> None:
    inputs = _inputs(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        out = model(**inputs).logits
        loss = torch.nn.functional.cross_entropy(out[0, :-1], inputs["input_ids"][0, 1:])
        loss.backward()
        opt.step()
    model.eval()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_save_checkpoint_in_memory_roundtrip(tmp_path, method):
    cfg = parse_cell_config(
        tiny_cell(tmp_path / "cap", train__method=method, train__lora__dropout=0.0)
    )
    torch.manual_seed(cfg.seed)
    model, _ = harness_models.build_model(cfg.model)
    model.set_attention(cfg.attention.mode, cfg.attention.impl)
    setup_trainable(model, cfg)
    _train_by_hand(model)
    f = save_checkpoint(model, cfg, tmp_path / "best.safetensors", step=3, metric=0.25)
    loaded = load_checkpoint(f)
    assert loaded.format == ("state-dict" if method == "full" else "lora-file")
    assert loaded.report.base_model == "harness:tiny-vlm"
    assert loaded.report.hyperparameters["base_init_seed"] == str(cfg.seed)
    assert loaded.report.probe.changed and loaded.report.probe.finite
    assert not loaded.report.warnings, loaded.report.warnings
    inputs = _inputs(model)
    torch.testing.assert_close(
        _logits(loaded.model, inputs), _logits(model, inputs), atol=ATOL, rtol=0
    )
    if method == "lora":  # the trained projector came back too, not only the LoRA deltas
        assert any("projector" in k for k in loaded.report.key_report("extra").matched)


def _rebuild(cell_dir, method: str):
    """The trained model rebuilt without the loader: the seed, build_model, the harness's reader."""
    import yaml
    from safetensors.torch import load_file

    from harness.cell.checkpoints import load_lora_state

    path = cell_dir / "ckpt" / "final.safetensors"
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    raw = yaml.safe_load((cell_dir / "config.yaml").read_text())
    cfg = parse_cell_config(json.loads(json.dumps(raw)))
    torch.manual_seed(int(meta["base_init_seed"]))
    model, _ = harness_models.build_model(ModelConfig(**json.loads(meta["model_config"])))
    model.set_attention(cfg.attention.mode, cfg.attention.impl)
    if method == "full":
        model.load_state_dict(load_file(str(path)))
    else:
        setup_trainable(model, cfg)
        load_lora_state(model, load_file(str(path)))
    return model.eval(), path


@pytest.mark.parametrize("method", ["full", "lora"])
def test_real_cell_checkpoint_roundtrip(tmp_path, method):
    from harness.cell.run import run_cell

    over = {"train__method": method, "train__max_steps": 3, "train__eval_every": 3}
    if method == "lora":
        over["checkpoint__peft_dir"] = True
    cfg = parse_cell_config(tiny_cell(tmp_path / "cap", **over))
    cell = tmp_path / "cell"
    assert run_cell(cfg, cell) == 0
    assert (cell / "ckpt" / "best.safetensors").is_file()
    ref, path = _rebuild(cell, method)
    loaded = load_checkpoint(path)
    assert loaded.report.probe.changed and not loaded.report.warnings, loaded.report.warnings
    inputs = _inputs(ref)
    torch.testing.assert_close(
        _logits(loaded.model, inputs), _logits(ref, inputs), atol=ATOL, rtol=0
    )
    best = load_checkpoint(cell / "ckpt" / "best.safetensors", probe=False)
    assert best.report.hyperparameters["step"] == "3"


def test_real_cell_peft_dir_onto_tiny_vlm_decoder(tmp_path):
    """``ckpt/peft/`` is the PEFT-wrapped *decoder* only: it loads onto the tiny-vlm's decoder.

    It does not carry the trained projector (``extra_trainable``), so it cannot restore the whole
    vision model; the safetensors file does. Text-only logits of the decoder must match.
    """
    from harness.cell.run import run_cell

    over = {"train__method": "lora", "train__max_steps": 3, "train__eval_every": 3}
    cfg = parse_cell_config(tiny_cell(tmp_path / "cap", **over, checkpoint__peft_dir=True))
    cell = tmp_path / "cell"
    assert run_cell(cfg, cell) == 0
    ref, path = _rebuild(cell, "lora")
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata()
    torch.manual_seed(int(meta["base_init_seed"]))
    base, _ = harness_models.build_model(ModelConfig(**json.loads(meta["model_config"])))
    loaded = load_checkpoint(cell / "ckpt" / "peft", base_model=base.decoder, merge=True)
    assert loaded.format == "peft-adapter" and loaded.report.probe.changed
    assert not loaded.report.key_report("adapter").missing
    ids = {"input_ids": torch.tensor([loaded.report.probe.input_ids])}
    torch.testing.assert_close(
        _logits(loaded.model, ids), _logits(ref.decoder, ids), atol=ATOL, rtol=0
    )
