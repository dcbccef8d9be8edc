"""Artifact download through the unchanged wandb client (contract test, wandb==0.31.0) against a
local server, the verified local copy, and every failure path: one line, non-zero, in time."""

from __future__ import annotations

import json
import socket
import time
from importlib import metadata

import pytest

from harness.wandb_access.download import MARKER
from harness.wandb_access.fetch import FetchError, artifact_roots, fetch_artifact, find_local
from harness.wandb_access.refs import parse_ref
from tests.benchmark.wandb_server import FakeWandbServer

FILES = {
    "best_model/config.json": b'{"model_type": "llama"}',
    "best_model/model.safetensors": bytes(range(256)) * 40,
}
META = {"format": "hf-full", "base_model": "/models/base"}
KEY = "k" * 40


@pytest.fixture()
def wandb_home(tmp_path, monkeypatch):
    """Every W&B directory and HOME inside tmp; no key, no base URL from the machine."""
    for var in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb" / var.lower()))
    monkeypatch.setenv("WANDB_ARTIFACT_DIR", str(tmp_path / "env-artifacts"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_wandb_is_the_pinned_version():
    assert metadata.version("wandb") == "0.31.0", "the fake server follows 0.31.0's wire format"


def test_download_then_reuse_the_verified_local_copy(wandb_home, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    ref = parse_ref("ent/proj/model:v3")
    with FakeWandbServer(FILES, metadata=META) as srv:
        got = fetch_artifact(ref, artifacts_dir=wandb_home / "arts", base_url=srv.url, timeout_s=10)
        ops = list(srv.operations)
    assert got.origin == "downloaded" and got.version == "v3"
    assert got.reference == "ent/proj/model:v3" and got.metadata == META
    assert got.path == wandb_home / "arts" / "model:v3"
    for name, data in FILES.items():
        assert (got.path / name).read_bytes() == data
    marker = json.loads((got.path / MARKER).read_text())
    assert marker["files"] == {n: len(b) for n, b in FILES.items()}
    for op in ("Viewer", "ArtifactMembershipByName", "GetArtifactMembershipFileUrls"):
        assert op in ops
    assert {"GET manifest", *(f"GET {n}" for n in FILES)} <= set(ops)
    assert not list((wandb_home / "home").rglob("*")), "nothing written to HOME"
    # second time: the verified copy is used, no server needed at all
    again = fetch_artifact(ref, artifacts_dir=wandb_home / "arts", base_url="http://127.0.0.1:9")
    assert again.origin == "local copy" and again.path == got.path and again.metadata == META
    # a file changed after the verified download: the copy is no longer trusted
    with (got.path / "best_model" / "model.safetensors").open("ab") as fh:
        fh.write(b"x")
    found, tried = find_local(ref, artifact_roots(wandb_home / "arts"))
    assert found is None and "not verified" in tried[0]


def test_local_lookup_order_and_what_is_refused(wandb_home):
    roots = artifact_roots(wandb_home / "flag")
    assert roots == [wandb_home / "flag", wandb_home / "env-artifacts", wandb_home / "artifacts"]
    partial = wandb_home / "artifacts" / "model:v3"
    partial.mkdir(parents=True)
    (partial / "weights.bin").write_bytes(b"half")
    found, tried = find_local(parse_ref("model:v3"), roots)
    assert found is None and "not verified (no completion marker" in tried[-1]
    found, tried = find_local(parse_ref("ent/proj/model:latest"), roots)
    assert found is None and "can move" in tried[0]


def _fails(ref: str, **kw) -> tuple[FetchError, float]:
    start = time.perf_counter()
    with pytest.raises(FetchError) as info:
        fetch_artifact(parse_ref(ref), **kw)
    return info.value, time.perf_counter() - start


def _one_line(err: FetchError, *words: str) -> None:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text
    for w in ("ent/proj/model:v3", "Local copies looked for", "Fix:", *words):
        assert w in text, text


def test_no_key(wandb_home):
    with FakeWandbServer(FILES) as srv:
        err, _ = _fails("ent/proj/model:v3", base_url=srv.url, timeout_s=5)
    _one_line(err, "no W&B API key", "WANDB_API_KEY", str(wandb_home / "artifacts"))
    assert err.exit_code == 2 and err.kind == "no_key"


def test_refused_connection_with_a_short_timeout(wandb_home, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err, _ = _fails("ent/proj/model:v3", base_url=f"http://127.0.0.1:{port}", timeout_s=2)
    _one_line(err, "no answer from", "within 2 s", "--wandb_timeout")
    assert err.exit_code == 1 and err.kind == "unreachable"


def test_unauthorized(wandb_home, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    with FakeWandbServer(FILES, mode="401") as srv:
        err, _ = _fails("ent/proj/model:v3", base_url=srv.url, timeout_s=5)
    _one_line(err, "refused the API key")
    assert err.exit_code == 2 and err.kind == "unauthorized"


def test_not_found(wandb_home, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    with FakeWandbServer(FILES, mode="not_found") as srv:
        err, _ = _fails("ent/proj/model:v3", base_url=srv.url, timeout_s=5)
    _one_line(err, "not found")
    assert err.exit_code == 2 and err.kind == "not_found"


def test_interrupted_download_leaves_no_usable_folder(wandb_home, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    with FakeWandbServer(FILES, mode="truncate") as srv:
        err, _ = _fails("ent/proj/model:v3", base_url=srv.url, timeout_s=5)
    _one_line(err, "interrupted")
    assert err.exit_code == 1
    assert not (wandb_home / "env-artifacts" / "model:v3").exists()


def test_verify_names_every_kind_of_damage(tmp_path):
    from harness.wandb_access.download import md5_b64, verify

    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "b").write_bytes(b"xyz")
    entries = {"a": (3, md5_b64(tmp_path / "a")), "b": (3, md5_b64(tmp_path / "a")), "c": (1, None)}
    entries["d"] = (5, None)
    (tmp_path / "d").write_bytes(b"ab")
    assert verify(tmp_path, entries) == [
        "b does not match its md5 in the manifest",
        "c is missing",
        "d has 2 of 5 bytes",
    ]
    assert verify(tmp_path, {"a": (3, md5_b64(tmp_path / "a"))}) == []


def test_hard_time_limit_kills_a_hanging_download(wandb_home, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    with FakeWandbServer(FILES, mode="hang") as srv:
        err, elapsed = _fails("ent/proj/model:v3", base_url=srv.url, timeout_s=30, limit_s=6)
    _one_line(err, "did not finish within 6 s", "--download_limit")
    assert err.exit_code == 1 and err.kind == "time_limit"
    assert elapsed < 30  # the limit, not the per-request timeout, ended it
