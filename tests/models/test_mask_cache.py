"""hf-vlm reuses the 4D mask of a batch whose layout it has seen (MaskCache): the same tensors
for the same layout, a new mask equal to transformers' own build for a new one."""

from __future__ import annotations

import torch

from harness.models.vlm_masks import block_ids, build_mask, image_span
from tests.models.helpers import captcha_batch, load


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return torch.equal(a, b)


def test_a_seen_layout_reuses_its_mask_and_a_new_one_is_built(tiny_dirs):
    model = load(tiny_dirs["gemma3"])  # sliding layers: a dict of two masks
    model.attention_mode = "image_bidirectional"
    batch = captcha_batch(model)
    ids, mask2d = batch.input_ids, batch.attention_mask
    first, _ = model.attention_inputs(ids, mask2d, batch.extras or {})
    again, _ = model.attention_inputs(ids.clone(), mask2d.clone(), batch.extras or {})
    assert again is first
    padded = mask2d.clone()
    padded[0, -1] = 0  # another layout: the last token of the first row is padding
    other, _ = model.attention_inputs(ids, padded, batch.extras or {})
    assert other is not first and not _equal(other, first)
    model.attention_mode = "causal"  # the blocks differ: another mask
    causal, _ = model.attention_inputs(ids, mask2d, batch.extras or {})
    assert not _equal(causal, first)
    # what the cache returns is what transformers builds for that layout
    vlm = model.base_vlm()
    placeholder = torch.empty((*ids.shape, 1))
    model.attention_mode = "image_bidirectional"
    span = image_span(ids, model.span_ids)
    native = model.family.native_block_ids(ids, batch.extras or {}, span)
    blocks = block_ids("image_bidirectional", span, padded, native)
    fresh = build_mask(vlm.config.get_text_config(), placeholder, padded, blocks)
    assert _equal(other, fresh)
