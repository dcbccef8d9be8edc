"""Where W&B writes: every directory it uses, pointed under one root."""

from __future__ import annotations

import os
from pathlib import Path

WANDB_DIR_VARS: tuple[str, ...] = (
    "WANDB_DIR",
    "WANDB_CACHE_DIR",
    "WANDB_DATA_DIR",
    "WANDB_CONFIG_DIR",
    "WANDB_ARTIFACT_DIR",
)
"""The environment variables that decide where wandb writes (reference: shared/reference/wandb.md).
Without them wandb writes to ``~/.cache/wandb``, ``~/.local/share/wandb`` and ``~/.config/wandb``."""


def wandb_env(
    root: Path, keep_user_settings: bool = True, user_config: bool = False
) -> dict[str, str]:
    """Environment for a wandb process that writes only under ``root``.

    A variable the user already set wins when ``keep_user_settings`` (documented in the README),
    so people can still put the cache or artifacts where they like. ``user_config`` leaves
    ``WANDB_CONFIG_DIR`` to the user (``~/.config/wandb`` unless set), where ``wandb login``
    keeps the server's address: an online run needs it, an offline one does not.
    """
    root = Path(root)
    wanted = {
        "WANDB_DIR": root,
        "WANDB_CACHE_DIR": root / "cache",
        "WANDB_DATA_DIR": root / "data",
        "WANDB_CONFIG_DIR": root / "config",
        "WANDB_ARTIFACT_DIR": root / "artifacts",
    }
    if user_config:
        del wanted["WANDB_CONFIG_DIR"]
    env: dict[str, str] = {}
    for name, path in wanted.items():
        user = os.environ.get(name)
        env[name] = user if (keep_user_settings and user) else str(path)
    return env
