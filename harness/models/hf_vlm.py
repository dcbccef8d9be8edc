"""`hf-vlm`: transformers-native vision-language models (``AutoModelForImageTextToText``).

The model merges its own image features from the processor's outputs; what differs per family
(processor quirks, extra tensors, positions, native mask, LoRA targets) is in
``harness.models.families``. Each sample is encoded by the processor with its own image, so
images of any size batch together (the family pads tiles and crops). Prompts follow
``data.prompt_format``: ``seed`` (the seed layout: image, then ``Question: ... Answer:``) or
``chat_template`` (the model's own chat template). Masks: ``harness.models.vlm_masks``. Nothing
downloads unless ``model.path`` is a hub id on a networked machine; remote code needs the flag.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

from harness.contracts.config import ModelConfig
from harness.contracts.run_config import LoraConfig
from harness.models.families import FAMILIES, CustomCode, Family, family_for
from harness.models.greedy import greedy_decode
from harness.models.hf import ModelLoadError, _dtype
from harness.models.prefix_lm import EncodedBatch, PrefixLM
from harness.models.vlm_masks import (
    VLM_MODES,
    MaskCache,
    VLMCheck,
    block_ids,
    build_mask,
    check_vlm_mask,
    image_span,
    sliding_window,
)

_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, ImportError)
PROBE_QUESTION = "What is the text in this captcha image?"
PROBE_SIZE = (96, 32)
CHAT_USER = [{"type": "image"}, {"type": "text", "text": "{question}"}]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class SampleInputs:
    """One sample's processor outputs besides its ids: image tensors (batch dim 1) and the
    per-token values (``token_type_ids``, ``mm_token_type_ids``) of its prompt."""

    images: dict[str, torch.Tensor]
    per_token: dict[str, list[int]]


class HFVisionLM(PrefixLM):
    """A transformers VLM (``decoder``, possibly PEFT-wrapped), its processor and its family."""

    per_sample_images = True
    """EncodedSet encodes each record with its own image (``encode_sample``)."""
    reuses_prompt_cache = False

    def __init__(
        self,
        vlm: nn.Module,
        processor,
        path: str,
        family: Family | None = None,
        prompt_format: str = "seed",
    ) -> None:
        tokenizer = processor.tokenizer
        super().__init__(vlm, tokenizer)
        family = family or family_for(vlm.config.model_type) or CustomCode()
        self.processor, self.path, self.family = processor, path, family
        cfg = vlm.config
        image_id = getattr(cfg, "image_token_id", None)
        image_id = getattr(cfg, "image_token_index", None) if image_id is None else image_id
        if image_id is None:
            raise self._error("the model config names no image_token_id")
        self.image_token_id = int(image_id)
        wrappers = tokenizer.convert_tokens_to_ids(list(family.span_tokens))
        self.span_ids = [self.image_token_id, *wrappers]
        self.set_prompt_format(prompt_format)
        self._probe = Image.new("RGB", PROBE_SIZE, (128,) * 3)
        self.masks = MaskCache()
        ids, _ = self.encode_sample(PROBE_QUESTION, self._probe)
        self.image_tokens = ids.count(self.image_token_id)
        if not self.image_tokens:
            raise self._error("the processor put no image token in the prompt")
        # Aliases, not submodules (they already live in ``decoder``): ``model.freeze_vision``
        # and ``train.lora.extra_trainable: [projector]`` in harness.cell.trainable find them.
        object.__setattr__(self, "vision", _submodule(vlm, family.vision_tower))
        object.__setattr__(self, "projector", _submodule(vlm, family.projector))

    def _error(self, what: str) -> ModelLoadError:
        return ModelLoadError(f"model.path {self.path!r}: {what} (hf-vlm, {self.family.name})")

    # ------------------------------------------------------------------ model parts
    def base_vlm(self) -> nn.Module:
        """The transformers VLM under any PEFT wrapper."""
        dec = self.decoder
        return dec.get_base_model() if hasattr(dec, "get_base_model") else dec

    def base_decoder(self) -> nn.Module:
        """The VLM's language model: what the attention self-check and gradient checkpointing use."""
        return self.base_vlm().get_decoder()

    def lora_target_modules(self, names: list[str]) -> str:
        """PEFT ``target_modules`` for ``names`` inside the language model only (the vision tower
        has q_proj/v_proj too); the config's default list means the family's default targets."""
        if names == LoraConfig().target_modules:
            names = list(self.family.lora_targets)
        scope = self.family.language_model.replace(".", r"\.")
        return rf"^{scope}\..*\.({'|'.join(names)})$"

    def set_attention(self, mode: str, impl: str) -> None:
        """Any of ``VLM_MODES`` with sdpa or eager_dense; flash_attention_2 only where it keeps the
        mask (causal, for a family whose own mask is causal)."""
        from harness.cell.attention import use_attention

        if mode not in VLM_MODES:
            raise ModelLoadError(f"attention.mode {mode!r}: hf-vlm supports {', '.join(VLM_MODES)}")
        if impl == "flash_attention_2" and (
            mode != "causal" or self.family.native_mask != "causal"
        ):
            raise ModelLoadError(
                f"attention.impl: flash_attention_2 would drop the {mode} mask of "
                f"{self.family.name} (it keeps only padding); use attention.impl: sdpa"
            )
        self.attention_mode, self.attention_impl = mode, impl
        use_attention(self.base_vlm(), "causal", impl)

    # ------------------------------------------------------------------ encoding
    def set_prompt_format(self, prompt_format: str) -> None:
        """``seed`` or ``chat_template`` (``data.prompt_format``)."""
        if prompt_format == "chat_template" and not getattr(self.processor, "chat_template", None):
            raise self._error(
                "data.prompt_format: chat_template, but the processor has no chat template; "
                "use data.prompt_format: seed"
            )
        self.prompt_format = prompt_format

    def prompt_text(self, question: str) -> str:
        if self.prompt_format == "chat_template":
            content = [dict(c, text=question) if c["type"] == "text" else c for c in CHAT_USER]
            return self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        image = self.family.placeholder(self.processor)
        return self.family.seed_prompt.format(image=image, question=question)

    def encode_sample(self, question: str, image: Image.Image) -> tuple[list[int], SampleInputs]:
        """The processor's prompt ids for ``question`` about ``image`` and its other outputs."""
        out = self.family.processor_inputs(
            self.processor, self.prompt_text(question), image.convert("RGB")
        )
        ids = out["input_ids"][0].tolist()
        images = {k: out[k] for k in self.family.image_keys(out)}
        per_token = {k: out[k][0].tolist() for k in self.family.sequence_keys if k in out}
        return ids, SampleInputs(images, per_token)

    def prompt_ids(self, question: str) -> list[int]:
        """Prompt ids with a probe image (exact for families with a fixed token count)."""
        return self.encode_sample(question, self._probe)[0]

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The processor's ``pixel_values`` for one image."""
        return self.encode_sample(PROBE_QUESTION, image)[1].images["pixel_values"][0]

    def prefix_len(self) -> int:
        """Positions up to the end of the probe prompt's image span."""
        ids, _ = self.encode_sample(PROBE_QUESTION, self._probe)
        span = image_span(torch.tensor([ids]), self.span_ids)[0]
        return int(span.nonzero().max()) + 1

    def collate(self, prompts, answers, pixel_values, left_pad: bool = False) -> EncodedBatch:
        """Pad ids like PrefixLM; batch the family's image tensors and per-token values."""
        samples = pixel_values
        if isinstance(pixel_values, torch.Tensor):  # preprocessed pixels of fixed-size images
            samples = [SampleInputs({"pixel_values": p[None]}, {}) for p in pixel_values]
        batch = super().collate(prompts, answers, None, left_pad)
        if not samples:
            return batch
        images = self.family.batch_images([s.images for s in samples])
        batch.pixel_values = images.pop("pixel_values", None)
        width = batch.input_ids.shape[1]
        for key in samples[0].per_token:
            values = torch.zeros((len(prompts), width), dtype=torch.long)
            for i, s in enumerate(samples):
                row = s.per_token[key] + [self.family.answer_type] * len(
                    answers[i] if answers else []
                )
                start = width - len(row) if left_pad else 0
                values[i, start : start + len(row)] = torch.tensor(row)
            images[key] = values
        batch.extras = images
        return batch

    # ------------------------------------------------------------------ forward
    def attention_inputs(self, input_ids, attention_mask, extras):
        """(4D mask or per-layer-type dict, position ids) for the current attention mode."""
        vlm = self.base_vlm()
        positions = self.family.position_ids(vlm, input_ids, attention_mask, extras)
        if self.own_mask(self.attention_mode, self.attention_impl):
            return attention_mask, positions
        span = image_span(input_ids, self.span_ids)
        native = self.family.native_block_ids(input_ids, extras, span)
        blocks = block_ids(self.attention_mode, span, attention_mask, native)
        dtype = vlm.get_input_embeddings().weight.dtype
        shape = (*input_ids.shape, 1)
        placeholder = torch.empty(shape, dtype=dtype, device=input_ids.device)
        mask = self.masks.get(vlm.config.get_text_config(), placeholder, attention_mask, blocks)
        return mask, positions

    def own_mask(self, mode: str, impl: str) -> bool:
        """Whether ``mode`` is the family's own mask, which the model then builds from the 2D
        padding mask itself (transformers' masking utilities; sdpa's causal kernel when nothing
        is padded): causal on a causal family, and flash attention (allowed only there)."""
        causal = mode == "causal" and self.family.native_mask == "causal"
        return causal or impl == "flash_attention_2"

    def forward(
        self,
        batch: EncodedBatch | None = None,
        past_key_values=None,
        use_cache: bool = False,
        position_ids: torch.Tensor | None = None,
        *,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
    ):
        """HF model outputs (``.logits``) for an EncodedBatch (or raw ids and pixels)."""
        extras: dict[str, torch.Tensor] = {}
        if batch is not None:
            input_ids, attention_mask = batch.input_ids, batch.attention_mask
            pixel_values, extras = batch.pixel_values, batch.extras or {}
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask, positions = self.attention_inputs(input_ids, attention_mask, extras)
        if pixel_values is not None:
            pixel_values = pixel_values.to(self.base_vlm().dtype)
        return self.decoder(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions if position_ids is None else position_ids,
            pixel_values=pixel_values,
            cache=past_key_values,
            use_cache=use_cache,
            **self.family.model_kwargs(extras),
        )

    @torch.no_grad()
    def generate_greedy(self, batch: EncodedBatch, max_new_tokens: int) -> list[list[int]]:
        """Greedy decoding of left-padded prompts: the prefill uses the training mask of the
        attention mode; each new token sees every earlier real token."""
        _, positions = self.attention_inputs(
            batch.input_ids, batch.attention_mask, batch.extras or {}
        )
        out = self(batch, use_cache=True, position_ids=positions)
        cache = [out.cache]

        def step(tokens, attention, position):
            out = self.decoder(
                input_ids=tokens,
                attention_mask=attention,
                position_ids=position,
                cache=cache[0],
                use_cache=True,
            )
            cache[0] = out.cache
            return out.logits[:, -1]

        eos = self.tokenizer.eos_token_id
        return greedy_decode(
            step, out.logits[:, -1], batch.attention_mask, positions[..., -1:], eos, max_new_tokens
        )

    # ------------------------------------------------------------------ self-check
    def check_attention(self, mode: str, impl: str) -> VLMCheck:
        """``check_vlm_mask`` on two probe samples of different lengths, right- then left-padded:
        the real layout, positions and mask builder of this family and mode."""
        text_config = self.base_vlm().config.get_text_config()
        window = sliding_window(text_config)
        types = getattr(text_config, "layer_types", None) or ["full_attention"] * int(
            text_config.num_hidden_layers
        )
        windows = [window if t == "sliding_attention" else None for t in types]
        questions = (PROBE_QUESTION, "Which digits?")
        encoded = [self.encode_sample(q, self._probe) for q in questions]
        result = None
        for left in (False, True):
            batch = self.collate([e[0] for e in encoded], None, [e[1] for e in encoded], left)
            batch = batch.to(next(self.parameters()).device)
            extras = batch.extras or {}
            span = image_span(batch.input_ids, self.span_ids)
            native = self.family.native_block_ids(batch.input_ids, extras, span)
            blocks = block_ids(mode, span, batch.attention_mask, native)
            positions = self.family.position_ids(
                self.base_vlm(), batch.input_ids, batch.attention_mask, extras
            )
            result = check_vlm_mask(
                self.base_decoder(),
                (lambda e, m, b: m)
                if self.own_mask(mode, impl)
                else (lambda e, m, b: build_mask(text_config, e, m, b)),
                batch.attention_mask,
                blocks,
                span,
                positions,
                windows,
                mode,
                impl,
            )
        return result


def _submodule(vlm: nn.Module, path: str) -> nn.Module | None:
    try:
        return vlm.get_submodule(path)
    except AttributeError:
        return None


def _refuse_remote_code(path: str, remote: bool) -> None:
    """One line when a local folder's config.json maps classes to code in the folder."""
    import json
    from pathlib import Path

    config = Path(path) / "config.json"
    if remote or not config.is_file():
        return
    try:
        auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
    except (OSError, ValueError, AttributeError):
        return
    if auto_map:
        files = sorted({str(v).split(".")[0] for v in auto_map.values() if isinstance(v, str)})
        raise ModelLoadError(
            f"model.path {path!r}: config.json auto_map runs the folder's own code "
            f"({', '.join(f + '.py' for f in files)}); set model.trust_remote_code: true if you "
            "trust it"
        )


def build_hf_vlm(cfg: ModelConfig) -> HFVisionLM:
    """``AutoModelForImageTextToText`` + the family's processor from ``model.path``."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    if not cfg.path:
        raise ModelLoadError("model.path is required for hf-vlm (a local directory or hub id)")
    hint = (
        "Give a local directory with config.json, weights and processor files of a vision-language "
        "model (python -m harness.models.tiny writes one), or a hub id on a machine with network "
        "access; set model.trust_remote_code: true only for code you trust."
    )
    remote = cfg.trust_remote_code
    _refuse_remote_code(cfg.path, remote)
    try:
        config = AutoConfig.from_pretrained(cfg.path, trust_remote_code=remote)
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(
            f"model.path {cfg.path!r}: could not read a model config ({_first_line(exc)}). {hint}"
        ) from None
    family = family_for(config.model_type)
    try:
        processor = (family or CustomCode()).load_processor(cfg.path, remote)
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(
            f"model.path {cfg.path!r}: could not load a processor ({_first_line(exc)}). {hint}"
        ) from None
    if not (hasattr(processor, "image_processor") and hasattr(processor, "tokenizer")):
        raise ModelLoadError(
            f"model.path {cfg.path!r}: found {type(processor).__name__}, not a processor with an "
            f"image processor and a tokenizer (hf-vlm needs one). {hint}"
        )
    if family is None:
        if not remote:
            names = ", ".join(t for f in FAMILIES for t in f.model_types)
            raise ModelLoadError(
                f"model.path {cfg.path!r}: model_type {config.model_type!r} has no hf-vlm family "
                f"adapter (supported: {names}; or remote code with model.trust_remote_code: true)"
            )
        family = CustomCode()
    try:
        vlm = AutoModelForImageTextToText.from_pretrained(
            cfg.path, trust_remote_code=remote, dtype=_dtype(cfg.dtype)
        )
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(
            f"model.path {cfg.path!r}: could not load an image-text-to-text model "
            f"({_first_line(exc)}). {hint}"
        ) from None
    tokenizer = processor.tokenizer
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(f"model.path {cfg.path!r}: the tokenizer has no EOS token; add one")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return HFVisionLM(vlm, processor, cfg.path, family)
