"""Resume points in the cell (``harness/cell/resume.py``): a stopped cell run again in its folder
continues from its last point and ends bit-identical to an uninterrupted run; a damaged point,
or one of another config, is said in one line and the cell trains from step 0.

In-process runs (``run_cell``) stopped by an ``Interrupted`` raised after a resume point was
written; the real kill, through the runner, is tests/runner/test_resume_kill.py.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from harness.cell import resume as resume_mod
from harness.cell.run import Interrupted, TimedOut, run_cell
from harness.contracts import schema
from harness.contracts.config import parse_cell_config, to_dict
from harness.contracts.identity import config_hash
from harness.contracts.store_files import read_resume_manifest
from tests.cell_helpers import tiny_config

TIME_FIELDS = {"elapsed_s", "tokens_per_s"}
"""Fields of metrics.jsonl that are wall-clock measurements, never equal between two runs."""


def _curve(cell_dir: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock fields: the loss curve and every evaluation."""
    lines = (cell_dir / schema.METRICS_FILE).read_text().splitlines()
    return [{k: v for k, v in json.loads(ln).items() if k not in TIME_FIELDS} for ln in lines]


def _summary(cell_dir: Path) -> dict:
    return json.loads((cell_dir / schema.SUMMARY_FILE).read_text())


def assert_same_result(a: Path, b: Path) -> None:
    """Predictions byte for byte, the test metrics, the loss curve and the training stats."""
    pa, pb = (d / schema.PREDICTIONS_FILE for d in (a, b))
    assert pa.read_bytes() == pb.read_bytes()
    sa, sb = _summary(a), _summary(b)
    assert sa["metrics"] == sb["metrics"]
    keys = ("steps", "samples_seen", "first_loss", "last_loss", "last_token_accuracy")
    assert {k: sa["train"][k] for k in keys} == {k: sb["train"][k] for k in keys}
    assert _curve(a) == _curve(b)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """(data cache, cell folder) of an uninterrupted run without resume points."""
    root = tmp_path_factory.mktemp("ref")
    cfg = tiny_config(root / "data", checkpoint__save="both")
    assert run_cell(cfg, root / "cell") == 0
    return root / "data", root / "cell"


@pytest.fixture(scope="module")
def lora_reference(reference, tmp_path_factory) -> tuple[Path, Path]:
    """The same with LoRA (its dropout draws from the torch RNG at every step)."""
    root = tmp_path_factory.mktemp("lora")
    cfg = tiny_config(reference[0], checkpoint__save="both", **LORA)
    assert run_cell(cfg, root / "cell") == 0
    return reference[0], root / "cell"


LORA = {"train__method": "lora", "train__lora__dropout": 0.3, "train__lr": 0.01}


def _stop_after_point(monkeypatch, at_step: int, exc: Exception | None = None) -> None:
    """Raise ``exc`` (default ``Interrupted``, what SIGINT raises) right after the point of
    ``at_step``."""
    write = resume_mod.ResumePoints.write

    def write_then_stop(self, step, *args):
        write(self, step, *args)
        if step == at_step:
            raise exc or Interrupted("stopped by SIGINT")

    monkeypatch.setattr(resume_mod.ResumePoints, "write", write_then_stop)


def test_resume_every_is_not_part_of_the_cell_id(tmp_path):
    off = tiny_config(tmp_path)
    on = tiny_config(tmp_path, checkpoint__resume_every=2)
    assert config_hash(off) == config_hash(on)
    assert to_dict(on)["checkpoint"]["resume_every"] == 2


@pytest.mark.parametrize(("method", "at"), [("full", 4), ("lora", 4), ("full", 6)])
def test_an_interrupted_cell_continues_from_its_point_bit_identical(
    request, tmp_path, monkeypatch, method, at
):
    """Stopped after the point of step ``at`` (6: the last step, before the final evaluation)."""
    data, ref = request.getfixturevalue("reference" if method == "full" else "lora_reference")
    extra = LORA if method == "lora" else {}
    cfg = tiny_config(data, checkpoint__save="both", checkpoint__resume_every=2, **extra)
    out = tmp_path / "cell"
    with monkeypatch.context() as m:
        _stop_after_point(m, at)
        assert run_cell(cfg, out) == 1
    first = _summary(out)
    assert first["outcome"] == "interrupted" and first["train"]["resumed_at"] is None
    manifest = read_resume_manifest(out / schema.RESUME_DIR / schema.RESUME_MANIFEST)
    assert manifest["step"] == at and manifest["best"]  # eval_every 3: a best at step 3
    assert run_cell(cfg, out) == 0
    again = _summary(out)
    assert again["outcome"] == "completed" and again["train"]["resumed_at"] == at
    assert again["checkpoints"]["best"] == "ckpt/best.safetensors"
    assert not (out / schema.RESUME_DIR).exists(), "a completed cell removes its resume point"
    assert_same_result(ref, out)


def test_writing_resume_points_changes_nothing(reference, tmp_path):
    data, ref = reference
    cfg = tiny_config(data, checkpoint__save="both", checkpoint__resume_every=1)
    assert run_cell(cfg, tmp_path / "cell") == 0
    assert_same_result(ref, tmp_path / "cell")


def _damage_state(out: Path) -> None:
    manifest = read_resume_manifest(out / schema.RESUME_DIR / schema.RESUME_MANIFEST)
    state = out / schema.RESUME_DIR / manifest["state"]
    raw = bytearray(state.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    state.write_bytes(bytes(raw))


def _truncate_manifest(out: Path) -> None:
    path = out / schema.RESUME_DIR / schema.RESUME_MANIFEST
    path.write_bytes(path.read_bytes()[:40])


def _other_config(out: Path) -> None:
    path = out / schema.RESUME_DIR / schema.RESUME_MANIFEST
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "config_hash": "0123456789ab"}))


def _lose_best(out: Path) -> None:
    manifest = read_resume_manifest(out / schema.RESUME_DIR / schema.RESUME_MANIFEST)
    (out / schema.RESUME_DIR / manifest["best"]).unlink()


def _other_shapes(out: Path) -> None:
    """A point whose checksum is right but whose weights another model wrote."""
    path = out / schema.RESUME_DIR / schema.RESUME_MANIFEST
    manifest = json.loads(path.read_text())
    state_path = out / schema.RESUME_DIR / manifest["state"]
    state = torch.load(state_path, weights_only=True)
    name = next(iter(state["model"]))
    state["model"][name] = torch.zeros(3, 5)
    torch.save(state, state_path)
    raw = state_path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    path.write_text(json.dumps({**manifest, "state_bytes": len(raw), "state_sha256": sha}))


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_damage_state, "fails its SHA-256 check"),
        (_truncate_manifest, "unreadable"),
        (_other_config, "written by config 0123456789ab"),
        (_lose_best, "is missing"),
        (_other_shapes, "has shape (3, 5)"),
    ],
)
def test_a_damaged_point_is_said_and_the_cell_trains_from_step_0(
    reference, tmp_path, monkeypatch, capsys, damage, said
):
    data, ref = reference
    cfg = tiny_config(data, checkpoint__save="both", checkpoint__resume_every=2)
    out = tmp_path / "cell"
    with monkeypatch.context() as m:
        _stop_after_point(m, 4)
        assert run_cell(cfg, out) == 1
    damage(out)
    capsys.readouterr()
    assert run_cell(cfg, out) == 0
    err = capsys.readouterr().err
    summary = _summary(out)
    assert summary["outcome"] == "completed" and summary["train"]["resumed_at"] is None
    note = summary["train"]["resume_note"]
    assert note.startswith("resume point not used, training from step 0: ") and said in note
    assert f"note: {note}" in err
    assert_same_result(ref, out)


def test_a_kill_between_the_state_and_its_manifest_leaves_the_previous_point(
    reference, tmp_path, monkeypatch
):
    """Stopped after the state file of step 4 is written and before the manifest names it: the
    next attempt continues from step 2 (the file of step 4 is not used, then removed)."""
    data, ref = reference
    cfg = tiny_config(data, checkpoint__save="both", checkpoint__resume_every=2)
    out = tmp_path / "cell"
    write_json = resume_mod.write_json

    def manifest_then_stop(path, manifest):
        if manifest.step == 4:
            raise Interrupted("stopped by SIGINT")
        write_json(path, manifest)

    with monkeypatch.context() as m:
        m.setattr(resume_mod, "write_json", manifest_then_stop)
        assert run_cell(cfg, out) == 1
    names = {p.name for p in (out / schema.RESUME_DIR).iterdir()}
    assert {"state-00000002.pt", "state-00000004.pt", schema.RESUME_MANIFEST} <= names
    assert run_cell(cfg, out) == 0
    assert _summary(out)["train"]["resumed_at"] == 2
    assert_same_result(ref, out)


def test_a_timed_out_cell_keeps_its_point_and_a_failed_one_removes_it(
    reference, tmp_path, monkeypatch
):
    data, ref = reference
    cfg = tiny_config(data, checkpoint__save="both", checkpoint__resume_every=2)
    out = tmp_path / "cell"
    with monkeypatch.context() as m:
        _stop_after_point(m, 2, TimedOut("the cell ran past runtime.timeout_s"))
        assert run_cell(cfg, out) == 0  # timeout is a result
    assert _summary(out)["outcome"] == "timeout"
    assert (out / schema.RESUME_DIR / schema.RESUME_MANIFEST).exists()
    assert run_cell(cfg, out) == 0  # what `--rerun timeout` runs
    assert _summary(out)["train"]["resumed_at"] == 2
    assert_same_result(ref, out)
    with monkeypatch.context() as m:
        _stop_after_point(m, 2, RuntimeError("a bug"))
        assert run_cell(cfg, tmp_path / "failed") == 1
    assert _summary(tmp_path / "failed")["outcome"] == "failed"
    assert not (tmp_path / "failed" / schema.RESUME_DIR).exists()


def test_sigterm_mid_training_writes_a_point_at_that_step_and_the_rerun_matches(tmp_path):
    """A real cell process sent SIGTERM (what Slurm sends at a time limit or preemption) while it
    trains, its resume cadence far away: it ends the step it is in, writes a point there and
    stops `interrupted`; run again it continues from that step, bit-identical to a run that was
    never stopped."""
    steps = 60
    raw = to_dict(
        tiny_config(
            tmp_path / "data",
            checkpoint__save="both",
            train__max_steps=steps,
            train__eval_every=20,
            checkpoint__resume_every=1000,
        )
    )
    ref = tmp_path / "ref"
    assert run_cell(parse_cell_config(raw), ref) == 0  # resume points change nothing
    cell_yaml = tmp_path / "cell.yaml"
    cell_yaml.write_text(yaml.safe_dump(raw))
    out = tmp_path / "cell"
    argv = [sys.executable, "-m", "harness.cell", str(cell_yaml), "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def trained() -> int:
        path = out / schema.METRICS_FILE
        lines = path.read_text().splitlines() if path.exists() else []
        return sum(json.loads(ln)["kind"] == "train" for ln in lines if ln.endswith("}"))

    deadline = time.monotonic() + 120
    while trained() < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    first = _summary(out)
    stopped_at = first["train"]["steps"]
    assert first["outcome"] == "interrupted" and 5 <= stopped_at < steps
    assert f"after step {stopped_at}, resume point written" in first["error"]["message"]
    manifest = read_resume_manifest(out / schema.RESUME_DIR / schema.RESUME_MANIFEST)
    assert manifest["step"] == stopped_at  # the very step, not the cadence's (none yet)
    assert run_cell(parse_cell_config(raw), out) == 0
    again = _summary(out)
    assert again["outcome"] == "completed" and again["train"]["resumed_at"] == stopped_at
    assert_same_result(ref, out)
