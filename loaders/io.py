"""Reading tensors safely: safetensors headers without data, pickles with ``weights_only=True``.

Only the exceptions that mean a bad file become a ``CheckpointError`` (a file that cannot be
opened, or one that is truncated or corrupt); anything else (a ``MemoryError``, a bug) propagates.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from loaders.errors import CheckpointError, CorruptCheckpointError, UnsafePickleError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
TENSOR_SUFFIXES = SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES
# Containers trainers wrap a state dict in (Lightning, DDP scripts, many research repos).
_STATE_DICT_WRAPPERS = ("state_dict", "model_state_dict", "model", "module")
CANNOT_OPEN = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
"""The file is not there or not readable: not a corrupt file, and fetching it again is no fix."""
TORCH_LOAD_CORRUPT = (
    RuntimeError,  # the zip reader: "failed finding central directory", "unexpected EOF"
    EOFError,
    OSError,  # seeks past the end of a truncated zip
    ValueError,  # e.g. UnicodeDecodeError in a legacy pickle
    struct.error,
    IndexError,
    KeyError,
    pickle.UnpicklingError,
)
"""What ``torch.load`` raises on a truncated or garbled file (found by cutting and flipping bytes
of real files)."""
_REFUSED = re.compile(r"GLOBAL |call reduce|Can only (create|build)")
"""torch's weights-only unpickler refusing an object, as opposed to a garbled byte stream (if a
torch release rewords it, such a file is called corrupt: still refused, never executed)."""


def _cannot_open(path: Path, e: OSError) -> CheckpointError:
    return CheckpointError(
        path,
        f"cannot be opened ({type(e).__name__}: {e.strerror or e})",
        "check that the path exists and is a readable file",
    )


def read_header(path: Path) -> tuple[dict[str, tuple[list[int], str]], dict[str, str]]:
    """Shapes/dtypes per key and the metadata of a safetensors file, without reading tensor data."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            shapes = {}
            for k in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                sl = f.get_slice(k)
                shapes[k] = (list(sl.get_shape()), str(sl.get_dtype()))
    except CANNOT_OPEN as e:
        raise _cannot_open(path, e) from e
    except (SafetensorError, OSError) as e:
        raise CorruptCheckpointError(
            path,
            f"not a readable safetensors file ({type(e).__name__}: {e})",
            "the file is truncated or corrupt; download or copy it again",
        ) from e
    _check_size(path)
    return shapes, meta


def _check_size(path: Path) -> None:
    """safetensors maps lazily: verify the data section the header promises is all there."""
    with open(path, "rb") as fh:
        n = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(n))
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    size = path.stat().st_size
    if 8 + n + end > size:
        raise CorruptCheckpointError(
            path,
            f"truncated safetensors file: header promises {8 + n + end} bytes, file has {size}",
            "the download or copy was cut short; fetch the file again",
        )


def load_safetensors(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file (size checked first, errors mapped to CheckpointError)."""
    read_header(path)
    try:
        return load_file(str(path), device=device)
    except CANNOT_OPEN as e:
        raise _cannot_open(path, e) from e
    except (SafetensorError, OSError) as e:
        raise CorruptCheckpointError(
            path, f"could not read tensors ({e})", "the file is corrupt; fetch it again"
        ) from e


def load_pickle(path: Path, mmap: bool = False) -> Any:
    """``torch.load(weights_only=True)``: a pickle that would run code is refused, never executed."""
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as e:  # legacy (non-zip) files cannot be memory-mapped
            if not mmap or "mmap" not in str(e):
                raise
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except CANNOT_OPEN as e:
        raise _cannot_open(path, e) from e
    except pickle.UnpicklingError as e:
        if not _REFUSED.search(str(e)):
            raise _corrupt_pickle(path, e) from e
        raise UnsafePickleError(
            path,
            "refused to unpickle: the file holds objects other than tensors and plain containers "
            "(loading it would execute code)",
            "if you trust its origin, convert it to safetensors in a sandbox first",
        ) from e
    except TORCH_LOAD_CORRUPT as e:
        raise _corrupt_pickle(path, e) from e


def _corrupt_pickle(path: Path, e: BaseException) -> CorruptCheckpointError:
    text = str(e)
    unpickler = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    detail = unpickler.group(1) if unpickler else (text.strip().splitlines() or [""])[0]
    kind = "struct.error" if isinstance(e, struct.error) else type(e).__name__
    return CorruptCheckpointError(
        path,
        f"not a readable torch file ({kind}: {detail[:200]})",
        "the file is truncated or corrupt; fetch it again",
    )


def unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The flat ``name -> tensor`` dict inside a loaded pickle (unwrapping common containers)."""
    for _ in range(3):
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        if isinstance(obj, dict):
            inner = next(
                (obj[k] for k in _STATE_DICT_WRAPPERS if isinstance(obj.get(k), dict)), None
            )
            if inner is not None:
                obj = inner
                continue
        break
    raise CorruptCheckpointError(
        path, "holds no flat name -> tensor dict", "save the model's state_dict() instead"
    )


def load_tensors(path: Path, mmap: bool = False) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or a (weights-only) torch pickle file."""
    if path.suffix in SAFETENSORS_SUFFIXES:
        return load_safetensors(path)
    return unwrap_state_dict(load_pickle(path, mmap=mmap), path)


def tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Key -> shape of a tensor file (header only for safetensors)."""
    if path.suffix in SAFETENSORS_SUFFIXES:
        return {k: s for k, (s, _) in read_header(path)[0].items()}
    return {k: list(v.shape) for k, v in load_tensors(path, mmap=True).items()}


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object, or CorruptCheckpointError naming the file."""
    try:
        data = json.loads(path.read_text())
    except CANNOT_OPEN as e:
        raise _cannot_open(path, e) from e
    except (OSError, ValueError) as e:
        raise CorruptCheckpointError(path, f"not valid JSON ({e})", "fix or re-create it") from e
    if not isinstance(data, dict):
        raise CorruptCheckpointError(path, "is not a JSON object", "fix or re-create it")
    return data
