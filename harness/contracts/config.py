"""Typed configuration of one experiment cell.

One merge, in this order: dataclass defaults, then the YAML (a matrix's ``base`` plus the cell's
axis values), then ``--set key.sub=value`` overrides. Every field has a default and a one-line
docstring (the string literal under it); unknown keys and wrong types are reported all at once,
each with its dotted key and what is valid.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.contracts.errors import UserError
from harness.contracts.keys import KeyTable, unknown_key
from harness.contracts.run_config import (
    CheckpointConfig,
    EvalConfig,
    RuntimeConfig,
    TrainConfig,
)
from harness.contracts.sizes import size_errors, style_size
from harness.contracts.validate import coerce
from harness.contracts.yaml_io import read_yaml


class ConfigError(UserError, ValueError):
    """Invalid configuration: ``errors`` lists every problem, one line each (the message is one
    line when there is one problem)."""

    def __init__(self, errors: list[str], source: str = "config") -> None:
        self.errors = list(errors)
        self.source = source
        if len(self.errors) == 1:
            super().__init__(f"{source}: {self.errors[0]}")
            return
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"{source}: {len(self.errors)} problems:\n{lines}")


@dataclass
class DataConfig:
    kind: Literal["captcha", "jsonl"] = "captcha"
    """`captcha`: synthetic captchas generated (and cached) on first use; `jsonl`: your own files."""
    train_path: str | None = None
    """JSONL of training records (kind=jsonl)."""
    val_path: str | None = None
    """JSONL used to pick the best checkpoint during training (kind=jsonl)."""
    test_path: str | None = None
    """JSONL of held-out records scored at the end (kind=jsonl; defaults to val_path)."""
    cache_dir: str = "data/captcha"
    """Where generated captchas are written and reused (kind=captcha)."""
    train_count: int = 6000
    """Generated training captchas."""
    val_count: int = 200
    """Generated validation captchas (best-checkpoint selection)."""
    test_count: int = 500
    """Generated held-out captchas (the reported score)."""
    digits: int = 6
    """Characters per captcha."""
    style: Literal["harness", "imagecaptcha"] = "harness"
    """`harness`: clean glyphs (96x32); `imagecaptcha`: the PyPI `captcha` package's, as the seed's."""
    test_style: Literal["harness", "imagecaptcha"] | None = None
    """Style of the held-out split, drawn at its default size; None: `data.style` (kind=captcha)."""
    image_width: int | None = None
    """Generated image width in pixels; None: the style's (96 harness, 200 imagecaptcha)."""
    image_height: int | None = None
    """Generated image height in pixels; None: the style's (32 harness, 200 imagecaptcha)."""
    question: str = "What is the text in this captcha image?"
    """Question asked for every generated captcha."""
    prompt_format: Literal["seed", "chat_template"] = "seed"
    """`seed`: image, then "Question: ... Answer:" (the seed's); `chat_template`: the model's (hf-vlm)."""

    def __post_init__(self) -> None:  # unset sizes: the style's, named in the resolved config
        w, h = style_size(self.style, self.image_width, self.image_height)
        self.image_width, self.image_height = w, h


@dataclass
class ModelConfig:
    name: Literal["tiny-vlm", "hf-causal-lm", "hf-vlm"] = "tiny-vlm"
    """Model family from the registry in harness/models/."""
    path: str | None = None
    """Local path or hub id (hf-causal-lm, hf-vlm). Never downloaded by tests or defaults."""
    trust_remote_code: bool = False
    """Allow the model's own Python code from its repository (off unless you turn it on)."""
    image_tokens: int = 48
    """Image tokens fed to the decoder (tiny-vlm; the seed's Moondream2 uses 729)."""
    image_rows: int | None = None
    """Rows of the image-token grid (tiny-vlm); None: the factorisation closest to the image aspect.
    1 gives one token per column strip, the natural reading order for a line of text."""
    hidden_size: int = 128
    """Decoder width (tiny-vlm)."""
    num_layers: int = 2
    """Decoder layers (tiny-vlm)."""
    num_heads: int = 4
    """Attention heads (tiny-vlm)."""
    intermediate_size: int = 512
    """Decoder MLP width (tiny-vlm)."""
    init_std: float = 0.08
    """Init std of the tiny-vlm decoder's weights. transformers' 0.02 leaves the model at chance
    for ~500 steps on captchas (near-uniform attention); 0.08 breaks that plateau ~2x sooner."""
    vision_channels: int = 128
    """Channels of the convolutional vision stem (tiny-vlm)."""
    input_height: int = 32
    """Images are resized to this height before the vision stem (tiny-vlm)."""
    input_width: int = 96
    """Images are resized to this width before the vision stem (tiny-vlm)."""
    stem_stages: int = 3
    """Conv + 2x max-pool stages of the vision stem (tiny-vlm); a larger input can take more."""
    input_norm: Literal["fixed", "per_image"] = "fixed"
    """`fixed`: 0..255 -> [-1, 1]; `per_image`: each image's darkest..lightest -> [-1, 1] (tiny-vlm)."""
    freeze_vision: bool | None = None
    """Freeze the vision encoder; unset: frozen for hf-vlm (pretrained, as the seed does), trained
    for tiny-vlm (its stem is random-init). The projector always trains."""

    def vision_frozen(self) -> bool:
        """``freeze_vision`` as it takes effect (the unset default resolved per model)."""
        return self.name == "hf-vlm" if self.freeze_vision is None else self.freeze_vision

    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weights dtype at load time (autocast is set by train.precision)."""


MASKLESS_IMPLS: tuple[str, ...] = ("flash_attention_2",)
"""``attention.impl`` values whose transformers mask path ignores custom masks (causal only)."""


SAME_FUNCTION = "same_function"
"""Field metadata of a key whose values must not change the function learned, only speed or
memory: why (the report reads it to find A/A pairs, whose gap is run-to-run noise)."""


@dataclass
class AttentionConfig:
    mode: Literal["causal", "prefix_bidirectional", "image_bidirectional", "native"] = "causal"
    """`prefix_bidirectional`: the image and the text before it (BOS) attend both ways, text after
    it causally; `image_bidirectional`: only the image's tokens both ways (hf-vlm); `native`: the
    model's own training mask (hf-vlm; PaliGemma, Gemma 3: bidirectional over the image)."""
    impl: Literal["sdpa", "eager_dense", "flash_attention_2"] = field(
        default="sdpa",
        metadata={
            SAME_FUNCTION: "every implementation computes the same attention mask, equal up to "
            "float rounding; only speed and memory differ"
        },
    )
    """`sdpa`: memory-efficient bool mask; `eager_dense`: the seed's eager attention + dense
    additive mask; `flash_attention_2`: causal only (CUDA + the flash-attn package)."""
    self_check: bool = True
    """Verify the mask by perturbation before training (fails the cell if the mask is wrong)."""


@dataclass
class CellConfig:
    seed: int = 0
    """Seed for data order, init and dropout."""
    data: DataConfig = field(default_factory=DataConfig)
    """Dataset."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Model."""
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    """Attention mode and implementation."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training loop."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoints."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    """Device, budgets and limits."""

    def __post_init__(self) -> None:
        errors = cross_field_errors(self)
        if errors:
            raise ConfigError(errors)


def cross_field_errors(cfg: CellConfig) -> list[str]:
    """Checks that involve more than one field; messages name the YAML keys."""
    errors: list[str] = []
    t, d, m = cfg.train, cfg.data, cfg.model
    positive = {
        "train.max_steps": t.max_steps,
        "train.micro_batch": t.micro_batch,
        "train.grad_accum": t.grad_accum,
        "train.eval_every": t.eval_every,
        "train.log_every": t.log_every,
        "eval.max_new_tokens": cfg.eval.max_new_tokens,
        "eval.batch_size": cfg.eval.batch_size,
        "model.image_tokens": m.image_tokens,
        "model.hidden_size": m.hidden_size,
        "model.num_layers": m.num_layers,
        "model.num_heads": m.num_heads,
        "data.digits": d.digits,
        "train.lora.r": t.lora.r,
    }
    errors += [f"`{k}` must be > 0, got {v}" for k, v in positive.items() if v <= 0]
    errors += size_errors(d, m)
    if t.lr <= 0:
        errors.append(f"`train.lr` must be > 0, got {t.lr}")
    if t.warmup_steps < 0:
        errors.append(f"`train.warmup_steps` must be >= 0, got {t.warmup_steps}")
    if not 0 <= t.lora.dropout < 1:
        errors.append(f"`train.lora.dropout` must be in [0, 1), got {t.lora.dropout}")
    if m.hidden_size > 0 and m.num_heads > 0 and m.hidden_size % m.num_heads:
        errors.append(
            f"`model.hidden_size` ({m.hidden_size}) must be divisible by `model.num_heads` ({m.num_heads})"
        )
    if m.image_rows is not None and (m.image_rows <= 0 or m.image_tokens % m.image_rows):
        errors.append(
            f"`model.image_rows` ({m.image_rows}) must be > 0 and divide `model.image_tokens` "
            f"({m.image_tokens})"
        )
    if m.name in ("hf-causal-lm", "hf-vlm") and not m.path:
        errors.append(f"`model.path` is required for model.name={m.name} (a local path or hub id)")
    if m.name == "hf-causal-lm" and cfg.attention.mode == "prefix_bidirectional":
        errors.append(
            "`attention.mode: prefix_bidirectional` needs an image prefix; hf-causal-lm is text-only"
        )
    mode = cfg.attention.mode
    if mode != "causal" and cfg.attention.impl in MASKLESS_IMPLS:
        errors.append(
            f"`attention.impl: {cfg.attention.impl}` cannot run `attention.mode: "
            f"{mode}`: transformers' flash_attention_2 path keeps only padding and "
            "causality and ignores any other mask, so the cell would train causally; use "
            f"`attention.impl: sdpa` (or `eager_dense`) for {mode}"
        )
    if mode in ("image_bidirectional", "native") and m.name != "hf-vlm":
        errors.append(f"`attention.mode: {mode}` needs model.name: hf-vlm")
    if d.prompt_format == "chat_template" and m.name != "hf-vlm":
        errors.append("`data.prompt_format: chat_template` needs model.name: hf-vlm")
    threads = cfg.runtime.threads
    if isinstance(threads, int) and threads <= 0:
        errors.append(f"`runtime.threads` must be > 0, `auto` or null, got {threads}")
    if d.kind == "jsonl" and not d.train_path:
        errors.append("`data.train_path` is required when data.kind=jsonl")
    if d.kind == "jsonl" and not (d.val_path or d.test_path):
        errors.append("`data.val_path` (or `data.test_path`) is required when data.kind=jsonl")
    every = cfg.checkpoint.resume_every
    if every is not None and every < 0:
        errors.append(f"`checkpoint.resume_every` must be >= 0 (0 or null: off), got {every}")
    steps = cfg.runtime.oom_backoff
    if len(set(steps)) != len(steps):
        errors.append(f"`runtime.oom_backoff` lists a step twice: {steps}; list each at most once")
    for key, value in (
        ("runtime.memory_budget_gb", cfg.runtime.memory_budget_gb),
        ("runtime.timeout_s", cfg.runtime.timeout_s),
        ("train.max_seconds", t.max_seconds),
    ):
        if value is not None and value <= 0:
            errors.append(f"`{key}` must be > 0 when set, got {value}")
    return errors


# --------------------------------------------------------------------------- parsing


def _build(cls: type, data: dict[str, Any], prefix: str, errors: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            errors.append(unknown_key(full, [f"{prefix}{n}" for n in names]))
            continue
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if isinstance(value, dict):
                kwargs[key] = _build(tp, value, f"{full}.", errors)
            else:
                errors.append(
                    f"`{full}`: expected a mapping of {tp.__name__} fields, got {value!r}"
                )
            continue
        n_before = len(errors)
        coerced = coerce(value, tp, full, errors)
        if len(errors) == n_before:
            kwargs[key] = coerced
    if cls is CellConfig:
        return kwargs  # cross-field checks run once all sections exist
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # pragma: no cover - sections have no __post_init__
        errors.extend(exc.errors)
        return cls()


def parse_cell_config(data: dict[str, Any] | None, source: str = "config") -> CellConfig:
    """Build a CellConfig from a plain mapping; raise ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"expected a mapping at the top level, got {type(data).__name__}"], source
        )
    errors: list[str] = []
    kwargs = _build(CellConfig, data, "", errors)
    if errors:
        raise ConfigError(errors, source)
    try:
        return CellConfig(**kwargs)
    except ConfigError as exc:
        raise ConfigError(exc.errors, source) from None


def load_cell_config(path: str) -> CellConfig:
    """Read a cell YAML file (as written by the runner or by hand); ConfigError in one line when
    it is missing, a directory, unreadable, not UTF-8, malformed or an alias bomb."""
    errors: list[str] = []
    data = read_yaml(path, errors)
    if errors:
        raise ConfigError(errors, path)
    return parse_cell_config(data, source=path)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data view of a config (YAML/JSON-safe)."""
    return dataclasses.asdict(cfg)


CELL_KEYS = KeyTable(CellConfig)
"""Every dotted key of a cell config and its type (matrix axes, ``--set``, ``--only``)."""
