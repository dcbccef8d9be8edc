"""`tiny-vlm`, the embedded default: a conv vision stem + projector feeding a tiny Llama decoder.

Everything is built in code from ``ModelConfig`` (random init, no download). The calibration in
shared/reference (a convolutional stem, learned image positions, lr ~1e-3 with warmup) is what
makes it learn the captcha task on a CPU in minutes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from harness.contracts.config import ModelConfig
from harness.models.prefix_lm import PrefixLM
from harness.models.tokenizer import build_char_tokenizer


def image_grid(tokens: int, aspect: float) -> tuple[int, int]:
    """(rows, cols) with rows * cols == tokens and rows / cols closest to ``aspect``."""
    pairs = [(r, tokens // r) for r in range(1, tokens + 1) if tokens % r == 0]
    return min(pairs, key=lambda rc: abs(math.log(rc[0] / rc[1]) - math.log(aspect)))


class ConvVision(nn.Module):
    """Three conv + max-pool stages, then a max-pool to exactly ``tokens`` positions, plus a
    learned embedding per position.

    Max-pooling all the way keeps each token's strongest local responses; averaging the stage
    outputs down to fewer tokens (this stem's first version) blurs them, and a 24-token grid
    then learns about as slowly as 12. The stem's weights are channels-last, so the
    convolutions take oneDNN's NHWC kernels: the same arithmetic in about half the CPU time.
    """

    def __init__(
        self,
        channels: int,
        tokens: int,
        height: int,
        width: int,
        rows: int | None = None,
        stages: int = 3,
    ) -> None:
        super().__init__()
        # Stages beyond the third keep the full width (a larger input, the same channels).
        widths = [1, max(channels // 4, 8), max(channels // 2, 16)][:stages]
        widths += [channels] * (stages + 1 - len(widths))
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GELU(), nn.MaxPool2d(2)]
        self.stem = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        grid = (rows, tokens // rows) if rows else image_grid(tokens, height / width)
        self.pool = nn.AdaptiveMaxPool2d(grid)
        self.positions = nn.Parameter(torch.randn(tokens, channels) * 0.02)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        feats = self.pool(self.stem(pixel_values))  # [B, C, rows, cols]
        return feats.flatten(2).transpose(1, 2) + self.positions


class TinyVLM(PrefixLM):
    """PrefixLM whose vision part is ConvVision; knows how to turn a PIL image into pixels."""

    def __init__(self, cfg: ModelConfig) -> None:
        tokenizer = build_char_tokenizer()
        decoder = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tokenizer),
                hidden_size=cfg.hidden_size,
                intermediate_size=cfg.intermediate_size,
                num_hidden_layers=cfg.num_layers,
                num_attention_heads=cfg.num_heads,
                num_key_value_heads=cfg.num_heads,
                max_position_embeddings=cfg.image_tokens + 512,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                tie_word_embeddings=False,
                initializer_range=cfg.init_std,
            )
        )
        vision = ConvVision(
            cfg.vision_channels,
            cfg.image_tokens,
            cfg.input_height,
            cfg.input_width,
            cfg.image_rows,
            cfg.stem_stages,
        )
        projector = nn.Sequential(
            nn.Linear(cfg.vision_channels, cfg.hidden_size),
            nn.GELU(),
            nn.Linear(cfg.hidden_size, cfg.hidden_size),
        )
        super().__init__(decoder, tokenizer, vision, projector, cfg.image_tokens)
        self.input_size = (cfg.input_height, cfg.input_width)
        self.input_norm = cfg.input_norm

    def _scale(self, data: torch.Tensor) -> torch.Tensor:
        """uint8 values as floats ``[N, 1, H, W]`` -> [-1, 1] (``model.input_norm``)."""
        if self.input_norm == "fixed":
            return (data / 127.5) - 1.0
        low = data.amin(dim=(1, 2, 3), keepdim=True)
        span = (data.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1.0)
        return (data - low) / span * 2.0 - 1.0

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """Grayscale, resize to the model's input size, scale to [-1, 1]: ``[1, H, W]``."""
        h, w = self.input_size
        img = image.convert("L").resize((w, h), Image.Resampling.BILINEAR)
        data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float()
        return self._scale(data.view(1, 1, h, w))[0]

    def preprocess_arrays(self, images: np.ndarray) -> torch.Tensor:
        """``[N, 1, H, W]``; images already at the input size skip PIL (same values, bit for bit)."""
        if images.ndim != 3 or images.shape[1:] != self.input_size:
            return super().preprocess_arrays(images)
        data = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).float()
        return self._scale(data.unsqueeze(1))


def build_tiny_vlm(cfg: ModelConfig) -> TinyVLM:
    return TinyVLM(cfg)
