"""Resolving the base model a format needs: a built module, a local directory, or a hub id."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from harness.contracts.checkpoint_meta import EMBEDDED_PREFIX
from loaders.context import LoadContext
from loaders.embedded import build_embedded
from loaders.errors import MissingBaseModelError, RemoteCodeError


def base_name(spec: str | Path | nn.Module | None) -> str | None:
    """Printable name of a base-model spec."""
    if spec is None or isinstance(spec, str | Path):
        return None if spec is None else str(spec)
    return f"<{type(spec).__name__} instance>"


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or Path(spec).exists() or spec.count("/") > 1


def load_base(
    spec: str | Path | nn.Module | None,
    ctx: LoadContext,
    needed_by: Path,
    recorded: str | None = None,
) -> nn.Module:
    """The base model: ``ctx.base_model`` if given, else what the checkpoint recorded.

    Raises MissingBaseModelError naming the checkpoint when neither is usable.
    """
    spec = ctx.base_model if ctx.base_model is not None else (spec or recorded)
    ctx.report.base_model = base_name(spec)
    if spec is None:
        raise MissingBaseModelError(
            needed_by,
            "this format needs a base model and the checkpoint does not record one",
            "pass base_model=/local/path (CLI: --base-model PATH)",
        )
    if isinstance(spec, nn.Module):
        return spec
    if str(spec).startswith(EMBEDDED_PREFIX):
        return build_embedded(str(spec), None, needed_by)
    name = str(spec)
    if _looks_like_path(name) and not Path(name).expanduser().exists():
        raise MissingBaseModelError(
            needed_by,
            f"base model path '{name}' does not exist",
            "pass base_model=/local/path to a transformers model directory (CLI: --base-model PATH)",
        )
    return _from_pretrained(
        str(Path(name).expanduser()) if _looks_like_path(name) else name, ctx, needed_by
    )


def _from_pretrained(name: str, ctx: LoadContext, needed_by: Path) -> nn.Module:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            name, dtype=ctx.torch_dtype(), trust_remote_code=ctx.allow_remote_code
        )
    except (OSError, ValueError) as e:
        msg = str(e)
        if "trust_remote_code" in msg or "custom code" in msg:
            raise RemoteCodeError(
                needed_by,
                f"base model '{name}' needs its repository's own Python code",
                "review that code, then pass allow_remote_code=True (CLI: --allow-remote-code)",
            ) from e
        raise MissingBaseModelError(
            needed_by,
            f"base model '{name}' not found locally and could not be fetched "
            f"({type(e).__name__}: {msg.splitlines()[0] if msg else ''})",
            "pass base_model=/local/path (CLI: --base-model PATH)",
        ) from e


def check_remote_code(config: dict, ctx: LoadContext, path: Path) -> None:
    """Refuse a config whose architecture exists only as the repository's own code (unless allowed)."""
    from transformers import CONFIG_MAPPING

    if ctx.allow_remote_code or not config.get("auto_map"):
        return
    if config.get("model_type") not in CONFIG_MAPPING:
        raise RemoteCodeError(
            path,
            f"model_type '{config.get('model_type')}' is defined only by the repository's own code "
            f"({', '.join(sorted(config['auto_map']))})",
            "review that code, then pass allow_remote_code=True (CLI: --allow-remote-code)",
        )
