"""``[entity/][project/]name[:alias]``: every accepted shape, and a clear error for each bad one."""

from __future__ import annotations

import pytest

from harness.wandb_access.refs import ArtifactRef, RefError, parse_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model", ArtifactRef("model")),
        ("model:v12", ArtifactRef("model", alias="v12")),
        ("proj/model:best", ArtifactRef("model", project="proj", alias="best")),
        (
            "johnrcumming/dylo-moe-full-training/best-dylora-model-full:v12",
            ArtifactRef("best-dylora-model-full", "johnrcumming", "dylo-moe-full-training", "v12"),
        ),
        ("  e/p/n.v2_x:latest ", ArtifactRef("n.v2_x", "e", "p", "latest")),
    ],
)
def test_valid(text, expected):
    assert parse_ref(text) == expected


def test_properties():
    ref = parse_ref("e/p/model:v12")
    assert ref.immutable and ref.version == 12 and ref.dirname == "model:v12"
    assert str(ref) == "e/p/model:v12" and ref.path == "e/p/model"
    moving = parse_ref("model")
    assert not moving.immutable and moving.dirname is None and str(moving) == "model:latest"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("model:", "empty alias"),
        ("a/b/c/d:v1", "4 '/'-separated parts"),
        ("e//model:v1", "empty project"),
        ("/p/model", "empty entity"),
        ("e/p/:v1", "empty name"),
        ("e/p/mo del:v1", "name 'mo del'"),
        ("e/p/model:v1/x", "alias 'v1/x'"),
        ("e/p/" + "m" * 129, "at most 128"),
    ],
)
def test_malformed(text, says):
    with pytest.raises(RefError) as info:
        parse_ref(text)
    msg = str(info.value)
    assert says in msg
    assert "[entity/][project/]name[:alias]" in msg or "at most 128" in msg
