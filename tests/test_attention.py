"""Attention masks: perturbation self-check, padding, sdpa vs eager_dense, cached generation."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, PhiConfig, PhiForCausalLM
from transformers.masking_utils import create_causal_mask

from harness.cell.attention import (
    CPU_IMPLS,
    AttentionUnavailable,
    MaskCheckError,
    attn_implementation,
    build_attention_mask,
    dense_additive_mask,
    position_ids_from_mask,
    prefix_ids_from_mask,
    self_check,
    use_attention,
)
from harness.contracts.config import ConfigError, parse_cell_config
from harness.tools.memory_probe import measure_one

PREFIX = 6
HIDDEN = 32
VOCAB = 64
COMBOS = sorted(CPU_IMPLS)


def tiny_llama(attn: str = "sdpa") -> LlamaForCausalLM:
    """2-layer Llama, hidden 32, deterministic weights."""
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        attn_implementation=attn,
    )
    return LlamaForCausalLM(cfg).eval()


def tiny_phi(attn: str = "sdpa") -> PhiForCausalLM:
    """2-layer Phi (Moondream2's text model family), hidden 32."""
    torch.manual_seed(0)
    cfg = PhiConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        attn_implementation=attn,
    )
    return PhiForCausalLM(cfg).eval()


def model_for(mode: str, impl: str) -> LlamaForCausalLM:
    return tiny_llama(attn_implementation(mode, impl))


def right_padded(lengths: list[int], seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random embeds [B, max_len, H] and a right-padding 2D mask."""
    gen = torch.Generator().manual_seed(seed)
    embeds = torch.randn(len(lengths), max(lengths), HIDDEN, generator=gen)
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
    return embeds, mask


def forward(model, embeds, mask_2d, mode, impl) -> torch.Tensor:
    prefix_ids = prefix_ids_from_mask(mask_2d, PREFIX)
    mask = build_attention_mask(model, embeds, mask_2d, prefix_ids, mode, impl)
    with torch.no_grad():
        out = model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids_from_mask(mask_2d)
        )
    return out.logits


def seed_float_mask(embeds: torch.Tensor, mask_2d: torch.Tensor, _ids=None) -> torch.Tensor:
    """The seed's train.py mask: float 1 = attend, 0 = blocked (added to scores, so blocks nothing)."""
    s = embeds.shape[1]
    allowed = dense_additive_mask(mask_2d, prefix_ids_from_mask(mask_2d, PREFIX), embeds.dtype, s)
    return (allowed == 0).to(embeds.dtype)


@pytest.mark.parametrize("build", [tiny_llama, tiny_phi], ids=["llama", "phi"])
@pytest.mark.parametrize(("mode", "impl"), COMBOS)
def test_self_check_passes(mode: str, impl: str, build) -> None:
    model = build(attn_implementation(mode, impl))
    result = self_check(model, mode, impl, prefix_len=PREFIX, seq_len=14, batch=3)
    assert result.probes >= 10
    assert result.min_change > 100 * 1e-6  # expected changes are far above the tolerance


@pytest.mark.parametrize(("mode", "impl"), COMBOS)
def test_mask_object_per_mode(mode: str, impl: str) -> None:
    model = model_for(mode, impl)
    embeds, mask_2d = right_padded([10, 8])
    mask = build_attention_mask(
        model, embeds, mask_2d, prefix_ids_from_mask(mask_2d, 6), mode, impl
    )
    if mode == "causal":
        assert mask is mask_2d
    elif impl == "sdpa":
        assert mask.dtype == torch.bool and mask.shape == (2, 1, 10, 10)
        assert mask[0, 0, 0, PREFIX - 1] and not mask[0, 0, PREFIX, PREFIX + 1]
        assert not mask[1, 0, 0, 9]  # pad key blocked
    else:
        assert mask.dtype == embeds.dtype and mask.shape == (2, 1, 10, 10)
        assert mask[0, 0, 0, PREFIX - 1] == 0 and mask[0, 0, PREFIX, PREFIX + 1] < -1e30
        assert mask[1, 0, 0, 9] < -1e30


@pytest.mark.parametrize(("mode", "impl"), COMBOS)
def test_padding_invariance(mode: str, impl: str) -> None:
    """Each padded sample's real logits equal its unpadded single-sample run."""
    model = model_for(mode, impl)
    lengths = [12, 9, 7]
    embeds, mask_2d = right_padded(lengths)
    batched = forward(model, embeds, mask_2d, mode, impl)
    assert torch.isfinite(batched).all()
    for b, n in enumerate(lengths):
        alone = forward(model, embeds[b : b + 1, :n], mask_2d[b : b + 1, :n], mode, impl)
        torch.testing.assert_close(batched[b, :n], alone[0], atol=1e-5, rtol=0)


def test_prefix_sdpa_matches_eager_dense() -> None:
    embeds, mask_2d = right_padded([12, 9])
    sdpa = forward(tiny_llama("sdpa"), embeds, mask_2d, "prefix_bidirectional", "sdpa")
    eager = forward(tiny_llama("eager"), embeds, mask_2d, "prefix_bidirectional", "eager_dense")
    causal = forward(tiny_llama("sdpa"), embeds, mask_2d, "causal", "sdpa")
    real = mask_2d.bool()
    torch.testing.assert_close(sdpa[real], eager[real], atol=1e-5, rtol=0)
    assert not torch.allclose(sdpa[real], causal[real], atol=1e-4)  # the prefix mode does something


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_causal_equals_model_default(attn: str) -> None:
    """Causal mode, and the explicit dense mask with no prefix, equal the model's own causal mask."""
    model = tiny_llama(attn)
    embeds, mask_2d = right_padded([11, 8])
    pos = position_ids_from_mask(mask_2d)
    with torch.no_grad():
        default = model(inputs_embeds=embeds, attention_mask=mask_2d, position_ids=pos).logits
        no_prefix = torch.full_like(mask_2d, -1)
        dense = dense_additive_mask(mask_2d, no_prefix, embeds.dtype, embeds.shape[1])
        explicit = model(inputs_embeds=embeds, attention_mask=dense, position_ids=pos).logits
    impl = "sdpa" if attn == "sdpa" else "eager_dense"
    ours = forward(model, embeds, mask_2d, "causal", impl)
    real = mask_2d.bool()
    torch.testing.assert_close(ours[real], default[real], atol=0, rtol=0)
    torch.testing.assert_close(explicit[real], default[real], atol=1e-5, rtol=0)


def test_seed_float_mask_is_caught() -> None:
    """The seed's 0/1 float mask (1 = attend) blocks nothing: text sees the future."""
    model = model_for("prefix_bidirectional", "eager_dense")
    with pytest.raises(MaskCheckError, match=r"text position .*leak"):
        self_check(model, "prefix_bidirectional", "eager_dense", PREFIX, mask_fn=seed_float_mask)


def test_bool_mask_under_eager_is_caught() -> None:
    """A bool mask handed to eager attention is added to the scores as 0/1: it blocks nothing."""
    model = model_for("prefix_bidirectional", "eager_dense")

    def bool_mask(embeds, mask_2d, _):
        return seed_float_mask(embeds, mask_2d).bool()

    with pytest.raises(MaskCheckError, match="leak"):
        self_check(model, "prefix_bidirectional", "eager_dense", PREFIX, mask_fn=bool_mask)


def test_wrong_attn_implementation_and_unknown_mode_raise() -> None:
    embeds, mask_2d = right_padded([8])
    ids = prefix_ids_from_mask(mask_2d, PREFIX)
    with pytest.raises(ValueError, match=r"set_attn_implementation\('eager'\)"):
        build_attention_mask(
            tiny_llama("sdpa"), embeds, mask_2d, ids, "prefix_bidirectional", "eager_dense"
        )
    with pytest.raises(ValueError, match="valid: causal/sdpa"):
        attn_implementation("bidirectional", "sdpa")


def prompt_embeds(model, n_text: int, seed: int) -> torch.Tensor:
    """[1, PREFIX + n_text, H]: random 'BOS + image' embeddings, then embedded text tokens."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(1, PREFIX, HIDDEN, generator=gen)
    text = torch.randint(0, VOCAB, (1, n_text), generator=gen)
    return torch.cat([image, model.get_input_embeddings()(text)], dim=1)


@torch.no_grad()
def greedy(model, embeds, mask_2d, mode, impl, steps: int, decode_2d: bool) -> list[torch.Tensor]:
    """Prefill with the prefix mask, then cached token-by-token decode; next-token logits per step."""
    prefix_ids = prefix_ids_from_mask(mask_2d, PREFIX)
    cache = DynamicCache(config=model.config)
    pos = position_ids_from_mask(mask_2d)
    mask = build_attention_mask(model, embeds, mask_2d, prefix_ids, mode, impl, cache)
    out = model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, cache=cache)
    logits = [out.logits[:, -1]]
    for _ in range(steps):
        step = model.get_input_embeddings()(logits[-1].argmax(-1))[:, None]
        mask_2d = torch.cat([mask_2d, torch.ones_like(mask_2d[:, :1])], dim=1)
        pos = pos[:, -1:] + 1
        ids = None if decode_2d else prefix_ids
        mask = build_attention_mask(model, step, mask_2d, ids, mode, impl, cache)
        out = model(inputs_embeds=step, attention_mask=mask, position_ids=pos, cache=cache)
        logits.append(out.logits[:, -1])
    return logits


@pytest.mark.parametrize("decode_2d", [True, False], ids=["decode-2d", "decode-built"])
@pytest.mark.parametrize("impl", ["sdpa", "eager_dense"])
def test_left_padded_cached_generation_matches_single(impl: str, decode_2d: bool) -> None:
    mode = "prefix_bidirectional"
    model = model_for(mode, impl)
    prompts = [prompt_embeds(model, n, seed=n) for n in (2, 5, 3)]
    width = max(p.shape[1] for p in prompts)
    embeds = torch.zeros(len(prompts), width, HIDDEN)
    mask_2d = torch.zeros(len(prompts), width, dtype=torch.long)
    for b, p in enumerate(prompts):
        embeds[b, width - p.shape[1] :] = p[0]
        mask_2d[b, width - p.shape[1] :] = 1
    batched = greedy(model, embeds, mask_2d, mode, impl, steps=3, decode_2d=decode_2d)
    for b, p in enumerate(prompts):
        single = greedy(model, p, torch.ones(1, p.shape[1], dtype=torch.long), mode, impl, 3, True)
        for step, (got, want) in enumerate(zip(batched, single, strict=True)):
            torch.testing.assert_close(got[b], want[0], atol=1e-5, rtol=0, msg=f"step {step}")


def test_mask_ignoring_padding_is_caught() -> None:
    """Pad keys must be blocked: a left-padded sample's real tokens must not see them."""
    model = model_for("prefix_bidirectional", "eager_dense")

    def no_padding(embeds, mask_2d, _):
        ids = prefix_ids_from_mask(mask_2d, PREFIX)
        return dense_additive_mask(torch.ones_like(mask_2d), ids, embeds.dtype, embeds.shape[1])

    with pytest.raises(MaskCheckError, match=r"sample 1: perturbing a pad position.*leak"):
        self_check(model, "prefix_bidirectional", "eager_dense", PREFIX, mask_fn=no_padding)


def test_measure_one_runs_tiny() -> None:
    """The memory probe behind ``--measure-memory`` runs (tiny shape, in-process)."""
    row = measure_one("prefix_bidirectional", "eager_dense", 1, 32, 4, prefix=6, text=4)
    assert row["extra_mb"] >= 0 and row["source"] in {"VmHWM", "ru_maxrss"}


def test_flash_attention_2_drops_the_prefix_mask_in_transformers() -> None:
    """Why flash_attention_2 is causal only: transformers builds no mask for it from the prefix
    ids (None here, without padding), so a prefix cell would train exactly like a causal one."""
    model = tiny_llama()
    embeds, mask_2d = right_padded([PREFIX + 4])
    ids = prefix_ids_from_mask(mask_2d, PREFIX)
    model.config._attn_implementation = "flash_attention_2"  # mask building needs no flash-attn
    mask = create_causal_mask(
        config=model.config,
        inputs_embeds=embeds,
        attention_mask=mask_2d,
        cache=None,
        block_sequence_ids=ids,
    )
    assert mask is None
    model.config._attn_implementation = "sdpa"
    assert build_attention_mask(model, embeds, mask_2d, ids, "prefix_bidirectional", "sdpa")[
        0, 0, 0, PREFIX - 1
    ]  # sdpa: the first prefix token sees the last one


def test_flash_attention_2_with_a_prefix_is_refused_at_config_time() -> None:
    attention = {"mode": "prefix_bidirectional", "impl": "flash_attention_2"}
    with pytest.raises(ConfigError) as err:
        parse_cell_config({"attention": attention})
    message = str(err.value)
    assert "attention.impl: flash_attention_2" in message and "prefix_bidirectional" in message
    assert "use `attention.impl: sdpa`" in message
    assert parse_cell_config({"attention": {"impl": "flash_attention_2"}})  # causal is fine
    with pytest.raises(ValueError, match="unknown attention mode/impl"):
        attn_implementation("prefix_bidirectional", "flash_attention_2")


@pytest.mark.skipif(
    importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed"
)
def test_flash_attention_2_without_its_package_is_one_clear_error() -> None:
    with pytest.raises(
        AttentionUnavailable, match=r"attention\.impl: flash_attention_2 cannot run"
    ):
        use_attention(tiny_llama(), "causal", "flash_attention_2")
