"""Tiny random-init folders of every VLM family (``python -m harness.models.tiny``), built once."""

from __future__ import annotations

import pytest

from harness.models.families import FAMILIES
from harness.models.tiny import write_tiny

FAMILY_NAMES = [f.name for f in FAMILIES]


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_vlms")
    return {name: write_tiny(name, root / name) for name in FAMILY_NAMES}


@pytest.fixture(params=FAMILY_NAMES)
def family_dir(request, tiny_dirs):
    return tiny_dirs[request.param]
