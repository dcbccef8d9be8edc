"""runtime.threads: `auto` (the default) resolves to this process's cores; values are checked."""

from __future__ import annotations

import os

import pytest

from harness.cell.threads import available_cores, prepare_environment, resolve_threads
from harness.contracts.config import ConfigError, RuntimeConfig, parse_cell_config


def test_auto_is_the_default_and_means_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # a caller's share would cap `auto`
    assert RuntimeConfig().threads == "auto"
    assert resolve_threads("auto") == available_cores() == len(os.sched_getaffinity(0))
    assert resolve_threads(3) == 3 and resolve_threads(None) is None


@pytest.mark.parametrize("value", [1, 4, "auto", None])
def test_valid_thread_settings(value):
    assert parse_cell_config({"runtime": {"threads": value}}).runtime.threads == value


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "must be > 0, `auto` or null"), (-2, "must be > 0"), ("many", "runtime.threads")],
)
def test_invalid_thread_settings(value, message):
    with pytest.raises(ConfigError, match=message):
        parse_cell_config({"runtime": {"threads": value}})


def test_the_wait_policy_is_not_set_once_torch_is_loaded(monkeypatch):
    """Inside a process that already imported torch the policy could not apply: nothing is set,
    so the host's child processes keep their environment."""
    import torch  # noqa: F401

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert prepare_environment("auto") is False
    assert "OMP_WAIT_POLICY" not in os.environ
