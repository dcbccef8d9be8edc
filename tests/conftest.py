"""Shared test settings: a hermetic environment whatever the caller's shell exported.

Offline, W&B disabled, no thread or OpenMP settings, every cache a library might write to inside
tmp, and no GPU for the tests not marked ``gpu``. The variables are cleared and set at import
(before torch starts its thread pool), once for the session (session- and module-scoped fixtures
run before any per-test fixture) and again for every test, so a test that changed one leaves
nothing behind. Child processes the tests start inherit ``os.environ``, so they see the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

CLEARED_PREFIXES = (
    "WANDB_",
    "OMP_",
    "MKL_",
    "KMP_",
    "GOMP_",
    "OPENBLAS_",
    "NUMEXPR_",
    "VECLIB_",
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
)
"""Caller variables that change what W&B, the thread pools or the hub code do: all removed."""

CLEARED = (
    "RAY_ADDRESS",
    "TOKENIZERS_PARALLELISM",
    "MPLCONFIGDIR",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)
"""Single variables removed as well: a Ray cluster to join, tokenizer and matplotlib settings,
and what would make the CLIs' output wider, narrower or coloured."""

FIXED = {
    "WANDB_MODE": "disabled",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
"""Values every test starts from."""

CACHE_DIRS = (
    "WANDB_DIR",
    "WANDB_CACHE_DIR",
    "WANDB_DATA_DIR",
    "WANDB_CONFIG_DIR",
    "WANDB_ARTIFACT_DIR",
    "XDG_CACHE_HOME",
    "HARNESS_BENCHMARK_CACHE",
)
"""Variables pointed at a fresh folder under tmp for every test (the benchmark's result cache
too: never the user's ~/.cache)."""

SESSION_CACHE_DIRS = ("HF_HOME", "MPLCONFIGDIR")
"""Caches under tmp shared by the session: matplotlib's font list is built once, not once per
child process that draws a plot."""

GPUS_ENV = "CUDA_VISIBLE_DEVICES"


def hermetic_env(
    environ: Mapping[str, str], cache_root: Path | None, session: bool = False
) -> dict[str, str | None]:
    """The changes that make ``environ`` hermetic: name -> value, None for a removal. The
    session's cache folders are set for the session and kept by every test."""
    kept = () if session else SESSION_CACHE_DIRS
    changes: dict[str, str | None] = {
        name: None
        for name in environ
        if (name.startswith(CLEARED_PREFIXES) or name in CLEARED) and name not in kept
    }
    changes.update(FIXED)
    if cache_root is not None:
        names = CACHE_DIRS + SESSION_CACHE_DIRS if session else CACHE_DIRS
        changes.update({var: str(cache_root / var.lower()) for var in names})
    return changes


def _apply(mp: pytest.MonkeyPatch, changes: Mapping[str, str | None]) -> None:
    for name, value in changes.items():
        if value is None:
            mp.delenv(name, raising=False)
        else:
            mp.setenv(name, value)


# at import, before any test module imports torch (its OpenMP pool reads the environment once)
for _name, _value in hermetic_env(os.environ, None, session=True).items():
    if _value is None:
        os.environ.pop(_name, None)
    else:
        os.environ[_name] = _value


@pytest.fixture(scope="session", autouse=True)
def _hermetic_session(tmp_path_factory) -> Iterator[None]:
    """The hermetic environment for session- and module-scoped fixtures."""
    with pytest.MonkeyPatch.context() as mp:
        _apply(mp, hermetic_env(os.environ, tmp_path_factory.mktemp("session-env"), session=True))
        yield


@pytest.fixture(autouse=True)
def _isolated_env(request, tmp_path_factory, monkeypatch) -> Iterator[None]:
    """Each test starts from the hermetic environment, its caches in its own temp directory."""
    _apply(monkeypatch, hermetic_env(os.environ, tmp_path_factory.mktemp("env")))
    if request.node.get_closest_marker("gpu") is None:
        # a CPU test runs on the CPU on a GPU machine too (its children: a cell with device
        # auto, the runner's GPU-per-worker split); gpu tests keep the caller's devices
        monkeypatch.setenv(GPUS_ENV, "")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """experiments/smoke.yaml run once for the session by the real runner, writes audited
    (tests/smoke_run.py); tests only read what it left."""
    from tests.smoke_run import run_smoke

    return run_smoke(tmp_path_factory.mktemp("smoke-run"))
