"""The one exception family every loader failure raises.

Each message names the file and says what to do; callers catch ``CheckpointError``.
"""

from __future__ import annotations

from pathlib import Path


class CheckpointError(Exception):
    """A checkpoint could not be detected, read or applied.

    ``path`` is the offending file or directory and ``hint`` says how to fix it.
    """

    def __init__(self, path: str | Path | None, problem: str, hint: str = "") -> None:
        self.path = str(path) if path is not None else None
        self.problem = problem
        self.hint = hint
        where = f"{self.path}: " if self.path else ""
        tail = f" Hint: {hint}" if hint else ""
        super().__init__(f"{where}{problem}.{tail}")


class NothingLoadableError(CheckpointError):
    """No known checkpoint format was recognised at the path."""


class AmbiguousCheckpointError(CheckpointError):
    """A directory holds several candidate checkpoints and none is preferred."""


class CorruptCheckpointError(CheckpointError):
    """A file is truncated, corrupt or not the format its name claims."""


class UnsafePickleError(CorruptCheckpointError):
    """A pickle holds objects other than tensors/containers; it was not executed."""


class MissingBaseModelError(CheckpointError):
    """The format needs a base model that is not given, not local, or not reachable."""


class RemoteCodeError(CheckpointError):
    """The model needs its repository's own Python code and ``allow_remote_code`` is off."""


class ShapeMismatchError(CheckpointError):
    """Tensors do not fit the model (shapes, rank or vocabulary size)."""


class RankMismatchError(ShapeMismatchError):
    """LoRA rank in the file disagrees with its config, its pair, or ``lora_rank=``."""


class VocabSizeError(ShapeMismatchError):
    """Vocabulary sizes of checkpoint, token space and model disagree."""


class InvalidOptionError(CheckpointError):
    """An option of ``load_checkpoint`` is invalid, or does not apply to this checkpoint
    (refused before any model is built)."""


class MissingAlphaError(CheckpointError):
    """A LoRA file records no alpha and none was passed."""


class MissingKeysError(CheckpointError):
    """``strict=True`` and trained keys the model needs are absent from the checkpoint."""


class UnmatchedKeysError(CheckpointError):
    """Trained tensors in the checkpoint map onto no module of the model."""


class TokenSpaceError(CheckpointError):
    """``token_space.json`` is invalid or disagrees with the saved rows."""


class TokenSpaceHashError(TokenSpaceError):
    """``token_space.json`` does not match its published sha256."""
