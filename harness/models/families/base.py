"""What a VLM family adapter says: the one place where a family differs from the defaults.

A family is chosen by the model config's ``model_type`` (``harness.models.families.FAMILIES``).
The defaults fit LLaVA-style models (one ``<image>`` token id expanded by the processor,
``masked_scatter`` merge, 0-based 1D positions, causal training mask); a family module overrides
only what differs. Each sample holds exactly one image.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

SEED_PLACEHOLDER = "{image}"


class Family:
    """A transformers VLM family: how to prompt it, batch its tensors and mask it."""

    name: str = "llava"
    model_types: tuple[str, ...] = ()
    """``config.model_type`` values this adapter handles."""
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Default LoRA target modules, inside the language model only."""
    language_model: str = "model.language_model"
    """Dotted path of the language model inside the ``...ForConditionalGeneration`` model."""
    vision_tower: str = "model.vision_tower"
    """Dotted path of the vision encoder (frozen by default)."""
    projector: str = "model.multi_modal_projector"
    """Dotted path of the vision-to-text projector (trained with LoRA's ``extra_trainable``)."""
    span_tokens: tuple[str, ...] = ()
    """Special tokens (besides the image token) that belong to an image's span in the sequence."""
    sequence_keys: tuple[str, ...] = ()
    """Processor outputs with one value per token (padded with the sequence)."""
    answer_type: int = 0
    """Value of the per-token keys on answer tokens (PaliGemma: 1, its 'suffix')."""
    native_mask: str = "causal"
    """The family's own training mask, in words (README, reports)."""
    seed_prompt: str = "{image}\n\nQuestion: {question}\n\nAnswer:"
    """The seed layout for this family's processor; ``{image}`` is the image placeholder text."""

    # ------------------------------------------------------------------ loading
    def load_processor(self, path: str, remote: bool):
        """The processor saved in ``path`` (``AutoProcessor``)."""
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(path, trust_remote_code=remote)

    def placeholder(self, processor) -> str:
        """The text for one image that the processor expands."""
        return processor.image_token

    # ------------------------------------------------------------------ encoding
    def processor_inputs(self, processor, text: str, image: Image.Image) -> dict:
        """The processor's output for one sample (tensors, batch dimension 1)."""
        return processor(images=[image], text=[text], return_tensors="pt")

    def image_keys(self, out: dict) -> list[str]:
        """Processor outputs that belong to the image (batched by ``batch_images``)."""
        skip = {"input_ids", "attention_mask", "labels", *self.sequence_keys}
        return [k for k in out if k not in skip]

    def batch_images(self, per_sample: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """One tensor per image key: concatenated along dim 0, zero-padded in every other dim
        (tiles, crops and their masks of different counts; padding crops are all zero, which the
        models drop)."""
        out = {}
        for key in per_sample[0]:
            parts = [s[key] for s in per_sample]
            shape = [max(p.shape[d] for p in parts) for d in range(1, parts[0].ndim)]
            padded = []
            for p in parts:
                pad: list[int] = []
                for d in reversed(range(1, p.ndim)):
                    pad += [0, shape[d - 1] - p.shape[d]]
                padded.append(torch.nn.functional.pad(p, pad) if any(pad) else p)
            out[key] = torch.cat(padded, dim=0)
        return out

    # ------------------------------------------------------------------ positions and masks
    def position_ids(self, vlm, input_ids, attention_mask, extras) -> torch.Tensor:
        """Positions of real tokens from 0 (left padding keeps the first real token at 0)."""
        return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

    def native_block_ids(self, input_ids, extras, spans) -> torch.Tensor:
        """``block_sequence_ids`` of the family's own training mask (causal: all -1)."""
        return torch.full_like(input_ids, -1)

    def model_kwargs(self, extras: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """What the model's forward takes besides ids, mask and positions."""
        return dict(extras)

    # ------------------------------------------------------------------ tiny folders
    def write_tiny(self, out: Path) -> None:  # pragma: no cover - every family overrides it
        raise NotImplementedError(f"no tiny model for family {self.name}")
