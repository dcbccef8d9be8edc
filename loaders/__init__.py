"""One loader for every checkpoint format: ``load_checkpoint(source, base_model=None, **options)``."""

from loaders.api import LoadedCheckpoint, detect, inspect_checkpoint, load_checkpoint
from loaders.errors import (
    AmbiguousCheckpointError,
    CheckpointError,
    CorruptCheckpointError,
    InvalidOptionError,
    MissingAlphaError,
    MissingBaseModelError,
    MissingKeysError,
    NothingLoadableError,
    RankMismatchError,
    RemoteCodeError,
    ShapeMismatchError,
    TokenSpaceError,
    TokenSpaceHashError,
    UnmatchedKeysError,
    UnsafePickleError,
    VocabSizeError,
)
from loaders.formats import FORMATS
from loaders.load_report import LoadReport
from loaders.moe import DyLoRAMoEModel

FORMAT_NAMES = (
    "hf-full",
    "state-dict",
    "peft-adapter",
    "lora-file",
    "dylora-moe",
    "trainable-rows",
)

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "AmbiguousCheckpointError",
    "CheckpointError",
    "CorruptCheckpointError",
    "DyLoRAMoEModel",
    "InvalidOptionError",
    "LoadReport",
    "LoadedCheckpoint",
    "MissingAlphaError",
    "MissingBaseModelError",
    "MissingKeysError",
    "NothingLoadableError",
    "RankMismatchError",
    "RemoteCodeError",
    "ShapeMismatchError",
    "TokenSpaceError",
    "TokenSpaceHashError",
    "UnmatchedKeysError",
    "UnsafePickleError",
    "VocabSizeError",
    "detect",
    "inspect_checkpoint",
    "load_checkpoint",
]
