"""The writer/reader pair of the harness checkpoint format, pinned through ``checkpoint_meta``.

A file written by the real cell code (``harness/cell/checkpoints.py: save_checkpoint``) is read
by the loader, and everything the writer puts in the header comes back through the same
constants. Renaming any header key on the writer's side only (injected below) breaks the pair.
"""

from __future__ import annotations

from importlib import metadata

import pytest
import torch

from harness.cell import checkpoints
from harness.cell.trainable import setup_trainable
from harness.contracts import checkpoint_meta as cm
from harness.contracts.config import CellConfig, parse_cell_config
from harness.models import build_model
from loaders import FORMAT_NAMES, CheckpointError, inspect_checkpoint, load_checkpoint
from loaders.formats import FORMATS, harness
from tests.cell_helpers import tiny_cell

STEP, METRIC = 3, 0.25


def _trained(tmp_path, method: str) -> tuple[CellConfig, torch.nn.Module]:
    """The tiny-vlm as a cell builds it, its trainable weights moved off their init."""
    cfg = parse_cell_config(
        tiny_cell(tmp_path / "cap", train__method=method, train__lora__dropout=0.0)
    )
    torch.manual_seed(cfg.seed)
    model, _ = build_model(cfg.model)
    setup_trainable(model, cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return cfg, model.eval()


def _problems(path, written: dict[str, str]) -> list[str]:
    """How the loader's reading of ``path`` departs from the header the writer meant to write."""
    kind = written[cm.FORMAT_KEY]
    info = inspect_checkpoint(path)
    details = info["details"]
    found = []
    if info["format"] != harness.KINDS[kind] or details.get("kind") != kind:
        found.append(f"inspect: format {info['format']!r}, kind {details.get('kind')!r}")
    for key in (cm.BASE_MODEL_KEY, *cm.HP_KEYS):
        if key in written and details.get(key) != written[key]:
            found.append(f"inspect: {key} is {details.get(key)!r}, written {written[key]!r}")
    try:
        loaded = load_checkpoint(path)
    except CheckpointError as e:
        return [*found, f"load: {type(e).__name__}: {e}"]
    if loaded.format != harness.KINDS[kind]:
        found.append(f"load: format {loaded.format!r}")
    if loaded.report.base_model != written[cm.BASE_MODEL_KEY]:
        found.append(f"load: base model {loaded.report.base_model!r}")
    if not loaded.report.probe.changed or loaded.report.warnings:
        found.append(f"load: probe changed={loaded.report.probe.changed}, {loaded.report.warnings}")
    return found


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_checkpoint_the_cell_writes_is_read_through_the_same_constants(tmp_path, method):
    cfg, model = _trained(tmp_path, method)
    written = checkpoints.metadata(cfg, STEP, METRIC)
    lora_keys = cm.LORA_KEYS if method == "lora" else ()
    assert list(written) == [*cm.COMMON_KEYS, *lora_keys]
    assert written[cm.FORMAT_KEY] == (cm.FORMAT_LORA if method == "lora" else cm.FORMAT_FULL)
    assert written[cm.BASE_MODEL_KEY] == cm.EMBEDDED_PREFIX + cfg.model.name
    assert written[cm.VERSION_KEY] == metadata.version(cm.DISTRIBUTION)
    path = checkpoints.save_checkpoint(model, cfg, tmp_path / "best.safetensors", STEP, METRIC)
    assert _problems(path, written) == []


@pytest.mark.parametrize("key", [*cm.COMMON_KEYS, *cm.LORA_KEYS])
def test_renaming_a_header_key_on_the_writer_side_breaks_the_pair(tmp_path, monkeypatch, key):
    cfg, model = _trained(tmp_path, "lora")
    written = checkpoints.metadata(cfg, STEP, METRIC)
    real = checkpoints.metadata

    def renamed(*args):
        meta = real(*args)
        meta[f"{key}_v2"] = meta.pop(key)
        return meta

    monkeypatch.setattr(checkpoints, "metadata", renamed)
    path = checkpoints.save_checkpoint(model, cfg, tmp_path / "best.safetensors", STEP, METRIC)
    assert _problems(path, written), f"renaming {key!r} went unnoticed"


def test_the_harness_kinds_are_reported_as_format_names_the_loader_has():
    names = {fmt.NAME for fmt in FORMATS}
    assert set(harness.KINDS) == set(cm.FORMATS)
    assert set(harness.KINDS.values()) <= names - {harness.NAME}
    assert len(names) == len(FORMATS), "two format modules share a NAME"
    assert set(FORMAT_NAMES) == names - {harness.NAME}  # the names a load can report


def test_version_comes_from_package_metadata_with_a_fallback(monkeypatch):
    assert cm.harness_version() == metadata.version("vlm-harness")

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cm.metadata, "version", not_installed)
    assert cm.harness_version() == cm.UNKNOWN_VERSION
