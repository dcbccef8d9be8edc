"""The harness checkpoint format: one definition for the writer and the reader.

``harness/cell/checkpoints.py`` writes safetensors files whose header metadata (all strings)
uses these names; ``loaders/formats/harness.py`` reads them back through the same constants, so
a renamed key or format breaks both sides at once (``tests/loaders/test_checkpoint_contract.py``).

- ``format``: ``harness-full`` (the model's whole state dict) or ``harness-lora`` (seed 000's
  layout: ``<module>.lora_A [in, r]`` / ``<module>.lora_B [r, out]`` plus the fully trained
  extra modules under their own state-dict names).
- ``base_model``: ``harness:<model name>`` for the harness's own random-init models (rebuilt from
  ``model_config`` with the torch seed ``base_init_seed``), else the HF path or hub id.
- ``step``, ``metric_name``, ``metric_value``, ``config_hash``, ``harness_version``; and for
  ``harness-lora`` the adapter's ``lora_rank``, ``lora_alpha``, ``lora_dropout``, ``lora_targets``.
"""

from __future__ import annotations

from importlib import metadata

FORMAT_FULL = "harness-full"
FORMAT_LORA = "harness-lora"
FORMATS = (FORMAT_FULL, FORMAT_LORA)

FORMAT_KEY = "format"
BASE_MODEL_KEY = "base_model"
MODEL_CONFIG_KEY = "model_config"
"""JSON of the ModelConfig the base was built from."""
BASE_INIT_SEED_KEY = "base_init_seed"
"""The torch seed set before ``build_model``: a random-init base is rebuilt bit-identically."""
STEP_KEY = "step"
METRIC_NAME_KEY = "metric_name"
METRIC_VALUE_KEY = "metric_value"
"""``repr`` of the metric, or empty when the checkpoint was saved without one."""
CONFIG_HASH_KEY = "config_hash"
VERSION_KEY = "harness_version"
LORA_RANK_KEY = "lora_rank"
LORA_ALPHA_KEY = "lora_alpha"
LORA_DROPOUT_KEY = "lora_dropout"
LORA_TARGETS_KEY = "lora_targets"
"""JSON list of the target module suffixes (hf-vlm: the adapted modules' full names, since the
suffixes would also name the vision tower's layers)."""

# The LORA_* names are also those of seed 000's LoRA files, which the ``lora-file`` format reads
# through the same shared code (loaders/lora_apply.py): renaming one breaks reading those files.
LORA_KEYS = (LORA_RANK_KEY, LORA_ALPHA_KEY, LORA_DROPOUT_KEY, LORA_TARGETS_KEY)
"""Written only into ``harness-lora`` files."""
COMMON_KEYS = (
    FORMAT_KEY,
    BASE_MODEL_KEY,
    MODEL_CONFIG_KEY,
    BASE_INIT_SEED_KEY,
    STEP_KEY,
    METRIC_NAME_KEY,
    METRIC_VALUE_KEY,
    CONFIG_HASH_KEY,
    VERSION_KEY,
)
"""Written into every harness checkpoint."""
HP_KEYS = (
    *LORA_KEYS,
    STEP_KEY,
    METRIC_NAME_KEY,
    METRIC_VALUE_KEY,
    CONFIG_HASH_KEY,
    VERSION_KEY,
    BASE_INIT_SEED_KEY,
)
"""The keys the loader reports as the checkpoint's hyperparameters, in this order."""

EMBEDDED_PREFIX = "harness:"
"""``base_model`` values naming one of the harness's own models (rebuilt, never downloaded)."""

DISTRIBUTION = "vlm-harness"
"""The package name in ``pyproject.toml``, whose installed metadata gives the version."""
UNKNOWN_VERSION = "unknown (vlm-harness not installed)"
"""What ``harness_version`` records when the code runs from a checkout that is not installed."""


def embedded_base(model_name: str) -> str:
    """``base_model`` of one of the harness's own models, e.g. ``harness:tiny-vlm``."""
    return f"{EMBEDDED_PREFIX}{model_name}"


def harness_version() -> str:
    """The installed package's version (``pyproject.toml``'s, once installed), or
    ``UNKNOWN_VERSION`` when it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION
