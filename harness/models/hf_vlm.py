"""`hf-vlm`: transformers-native vision-language models (``AutoModelForImageTextToText``).

The HF model merges its own image features: ``forward`` passes ``input_ids`` (with the processor's
expanded image placeholders), ``attention_mask`` and ``pixel_values`` straight through. Prompts
are the seed layout (``[BOS?] + image block + "\\n\\nQuestion: ..."``) exactly as the model's
processor tokenizes them; the image block is learned once from a dummy image. Only processors
with a fixed image size (Llava-style: one ``pixel_values`` tensor, no ``image_sizes``/grids) are
supported, since ``EncodedSet`` stacks one preprocessed tensor per record. Attention is
``causal`` only. Nothing downloads unless ``model.path`` is a hub id on a networked machine;
remote code runs only with ``model.trust_remote_code: true``.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from harness.contracts.config import ModelConfig
from harness.models.hf import ModelLoadError, _dtype
from harness.models.prefix_lm import PROMPT_TEMPLATE, EncodedBatch, PrefixLM

_LOAD_ERRORS = (OSError, ValueError, KeyError, TypeError, ImportError)
_VISION_NAMES = ("vision_tower", "vision_model", "visual")
_PROBE_QUESTION = "What is the text in this captcha image?"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class HFVisionLM(PrefixLM):
    """A transformers VLM (``decoder``, possibly PEFT-wrapped) and its processor as a PrefixLM."""

    def __init__(self, vlm: nn.Module, processor, path: str) -> None:
        tokenizer = processor.tokenizer
        super().__init__(vlm, tokenizer)
        self.processor = processor
        self.path = path
        cfg = vlm.config
        image_id = getattr(cfg, "image_token_id", None)
        image_id = getattr(cfg, "image_token_index", None) if image_id is None else image_id
        image_id = getattr(processor, "image_token_id", None) if image_id is None else image_id
        if image_id is None:
            raise self._error("the model config names no image_token_id")
        self.image_token_id = int(image_id)
        self.image_token = getattr(
            processor, "image_token", None
        ) or tokenizer.convert_ids_to_tokens(self.image_token_id)
        self._pre, self._block = self._image_block()
        self.image_tokens = self._block.count(self.image_token_id)
        expected = self._processor_ids(_PROBE_QUESTION, Image.new("RGB", (64, 64), (128,) * 3))
        if self.prompt_ids(_PROBE_QUESTION) != expected:
            raise self._error(
                f"{type(processor).__name__} builds prompts in a way hf-vlm cannot reproduce"
            )
        # Not registered as a submodule (the tower already lives in ``decoder``): only lets
        # ``model.freeze_vision`` in harness.cell.trainable find the vision encoder.
        towers = [m for n, m in vlm.named_modules() if n.rsplit(".", 1)[-1] in _VISION_NAMES]
        object.__setattr__(self, "vision", towers[0] if towers else None)

    def _error(self, what: str) -> ModelLoadError:
        return ModelLoadError(f"model.path {self.path!r}: {what} (hf-vlm)")

    def _processor_ids(self, question: str, image: Image.Image) -> list[int]:
        text = self.image_token + PROMPT_TEMPLATE.format(question=question)
        return list(self.processor(images=[image], text=[text])["input_ids"][0])

    def _image_block(self) -> tuple[list[int], list[int]]:
        """(special ids before the image, the processor's expanded image block); refuses
        processors whose block depends on the image size or that need extra image inputs."""
        blocks = []
        for size in ((64, 64), (96, 32)):
            image = Image.new("RGB", size, (128,) * 3)
            extra = set(self.processor.image_processor(images=image)) - {"pixel_values"}
            if extra:
                raise self._error(f"the image processor also needs {sorted(extra)}; unsupported")
            full = list(self.processor(images=[image], text=[self.image_token])["input_ids"][0])
            plain = list(self.tokenizer(self.image_token)["input_ids"])
            if plain.count(self.image_token_id) != 1:
                raise self._error(
                    f"the tokenizer does not encode {self.image_token!r} as one token"
                )
            k = plain.index(self.image_token_id)
            pre, post = plain[:k], plain[k + 1 :]
            if full[: len(pre)] != pre or full[len(full) - len(post) :] != post:
                raise self._error("the processor output does not wrap the tokenizer's ids")
            blocks.append((pre, full[len(pre) : len(full) - len(post)]))
        if blocks[0] != blocks[1] or self.image_token_id not in blocks[0][1]:
            raise self._error(
                "image tokens depend on the image size (dynamic resolution); unsupported"
            )
        return blocks[0]

    # ------------------------------------------------------------------ model parts
    def base_vlm(self) -> nn.Module:
        """The transformers VLM under any PEFT wrapper."""
        dec = self.decoder
        return dec.get_base_model() if hasattr(dec, "get_base_model") else dec

    def base_decoder(self) -> nn.Module:
        """The VLM's language model: what the attention self-check and gradient checkpointing use."""
        return self.base_vlm().get_decoder()

    def set_attention(self, mode: str, impl: str) -> None:
        """``causal`` only (the VLM builds its own masks); sdpa or eager on the whole VLM."""
        from harness.cell.attention import use_attention

        if mode != "causal":
            raise ModelLoadError(
                f"attention.mode {mode!r} is not supported by hf-vlm (the HF model builds its own "
                "attention masks); use attention.mode: causal, or model.name: tiny-vlm for "
                "prefix_bidirectional"
            )
        self.attention_mode, self.attention_impl = mode, impl
        use_attention(self.base_vlm(), mode, impl)

    # ------------------------------------------------------------------ encoding
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The processor's ``pixel_values`` for one image (``[C, H, W]``)."""
        out = self.processor.image_processor(images=image.convert("RGB"), return_tensors="pt")
        return out["pixel_values"][0]

    def prompt_ids(self, question: str) -> list[int]:
        """The processor's ids for one image + the seed prompt (image placeholder expanded)."""
        text = self.image_token + PROMPT_TEMPLATE.format(question=question)
        ids = list(self.tokenizer(text)["input_ids"])
        k = ids.index(self.image_token_id)
        return ids[:k] + self._block + ids[k + 1 :]

    def prefix_len(self) -> int:
        return len(self._pre) + len(self._block)

    # ------------------------------------------------------------------ forward
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
        """HF model outputs (``.logits``) for an EncodedBatch or raw ``input_ids``."""
        if batch is not None:
            input_ids, attention_mask = batch.input_ids, batch.attention_mask
            pixel_values = batch.pixel_values
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if pixel_values is not None:
            if bool((input_ids == self.image_token_id).any()):
                pixel_values = pixel_values.to(self.base_vlm().dtype)
            else:  # a decode step: the image is already in the cache
                pixel_values = None
        return self.decoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
        )

    reuses_prompt_cache = False  # generate_greedy is the VLM's own generate

    @torch.no_grad()
    def generate_greedy(self, batch: EncodedBatch, max_new_tokens: int) -> list[list[int]]:
        """Greedy ``generate`` on left-padded prompts; new tokens up to (without) EOS."""
        from transformers import GenerationConfig

        rows = batch.input_ids.shape[0]
        if max_new_tokens <= 0:
            return [[] for _ in range(rows)]
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        gen = GenerationConfig(
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=pad,
        )
        pixels = batch.pixel_values
        out = self.base_vlm().generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            pixel_values=None if pixels is None else pixels.to(self.base_vlm().dtype),
            generation_config=gen,
        )
        new = out[:, batch.input_ids.shape[1] :].tolist()
        return [row[: row.index(eos)] if eos in row else row for row in new]


def build_hf_vlm(cfg: ModelConfig) -> HFVisionLM:
    """``AutoModelForImageTextToText`` + ``AutoProcessor`` from ``model.path`` as a PrefixLM."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if not cfg.path:
        raise ModelLoadError("model.path is required for hf-vlm (a local directory or hub id)")
    hint = (
        "Give a local directory with config.json, weights and processor files of a vision-language "
        "model, or a hub id on a machine with network access; set model.trust_remote_code: true "
        "only for code you trust."
    )
    remote = cfg.trust_remote_code
    try:
        processor = AutoProcessor.from_pretrained(cfg.path, trust_remote_code=remote)
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(
            f"model.path {cfg.path!r}: could not load a processor ({_first_line(exc)}). {hint}"
        ) from None
    if not (hasattr(processor, "image_processor") and hasattr(processor, "tokenizer")):
        raise ModelLoadError(
            f"model.path {cfg.path!r}: found {type(processor).__name__}, not a processor with an "
            f"image processor and a tokenizer (hf-vlm needs one). {hint}"
        )
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
    return HFVisionLM(vlm, processor, cfg.path)
