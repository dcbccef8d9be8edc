"""The `tracking:` section, the --wandb flags and $WANDB_MODE: which settings win, and bad values
rejected before anything runs."""

from __future__ import annotations

import pytest

from harness.contracts.config import ConfigError
from harness.runner.matrix import build_matrix
from harness.runner.tracking import NullTracker, TrackingConfig, parse_tracking
from harness.runner.wandb_tracker import WandbTracker, make_tracker, resolve_tracking

from .conftest import run_cli, smoke_matrix

RAW = {"name": "m", "matrix": {"attention.mode": ["causal", "prefix_bidirectional"]}}


def test_the_tracking_section_is_read_and_never_changes_cell_ids():
    plain = build_matrix(RAW, "m.yaml", [])
    section = {"mode": "online", "project": "vlm", "entity": "team-1", "log_model": False}
    tracked = build_matrix({**RAW, "tracking": {**section, "tags": ["a"]}}, "m.yaml", [])
    assert [c.cell_id for c in tracked.cells] == [c.cell_id for c in plain.cells]
    assert tracked.tracking == TrackingConfig(**section, tags=("a",))
    assert plain.tracking == TrackingConfig()


def test_every_problem_in_the_tracking_section_is_reported_at_once():
    raw = {
        "mode": "sometimes",
        "projet": "x",
        "project": "a/b",
        "entity": "me@home",
        "log_model": "yes",
        "tags": "one",
        "finish_timeout_s": 0,
    }
    with pytest.raises(ConfigError) as info:
        build_matrix({**RAW, "tracking": raw}, "m.yaml", [])
    text = "\n".join(info.value.errors)
    assert len(info.value.errors) == 7, text
    for part in (
        "`tracking.mode`: 'sometimes' is not one of offline, online, disabled",
        "unknown key `tracking.projet` - did you mean `project`?",
        "`tracking.project`: 'a/b' cannot contain '/'",
        "`tracking.entity`: 'me@home' is not a W&B entity name",
        "`tracking.log_model`: expected true or false",
        "`tracking.tags`: expected a list of strings",
        "`tracking.finish_timeout_s`: expected a number of seconds > 0",
    ):
        assert part in text
    errors: list[str] = []
    assert parse_tracking(["offline"], errors) == TrackingConfig() and len(errors) == 1


@pytest.mark.parametrize(
    ("flag", "file_mode", "env", "mode"),
    [
        (None, None, {}, "offline"),  # the default: nothing leaves the machine
        (None, None, {"WANDB_MODE": "disabled"}, "disabled"),
        (None, None, {"WANDB_MODE": "dryrun"}, "offline"),  # wandb's own spellings
        (None, "online", {"WANDB_MODE": "disabled"}, "online"),  # the file wins over $WANDB_MODE
        ("disabled", "online", {"WANDB_MODE": "online"}, "disabled"),  # the flag wins
    ],
)
def test_mode_flag_then_file_then_environment_then_offline(flag, file_mode, env, mode):
    assert resolve_tracking(TrackingConfig(mode=file_mode), mode=flag, environ=env).mode == mode


def test_project_entity_and_model_logging_defaults():
    s = resolve_tracking(TrackingConfig(), environ={})
    assert (s.project, s.entity, s.log_model) == ("vlm-harness", None, False)
    s = resolve_tracking(TrackingConfig(mode="online"), environ={"WANDB_PROJECT": "p"})
    assert (s.project, s.log_model) == ("p", True)  # models are logged by default online
    file = TrackingConfig(project="from-file", entity="team", log_model=True)
    s = resolve_tracking(file, project="flag", entity="me", environ={"WANDB_PROJECT": "env"})
    assert (s.project, s.entity, s.log_model) == ("flag", "me", True)


def test_bad_environment_or_flag_values_are_input_errors():
    with pytest.raises(ConfigError, match="WANDB_MODE='sometimes' is not one of"):
        resolve_tracking(TrackingConfig(), environ={"WANDB_MODE": "sometimes"})
    with pytest.raises(ConfigError, match="'x:y' cannot contain ':'"):
        resolve_tracking(TrackingConfig(), project="x:y", environ={})
    with pytest.raises(ConfigError, match="'a b' is not a W&B entity name"):
        resolve_tracking(TrackingConfig(), entity="a b", environ={})


def test_disabled_tracking_starts_nothing(tmp_path):
    off = resolve_tracking(TrackingConfig(mode="disabled"), environ={})
    assert isinstance(make_tracker(off, tmp_path, tmp_path / "m", print), NullTracker)
    on = resolve_tracking(TrackingConfig(), environ={})
    tracker = make_tracker(on, tmp_path, tmp_path / "m", print)
    assert isinstance(tracker, WandbTracker)
    tracker.close()  # no cell ran: no mirror was started, nothing was written
    assert not (tmp_path / "wandb").exists()


def test_cli_rejects_a_bad_project_before_running_anything(tmp_path, home):
    store = tmp_path / "runs"
    done = run_cli(str(smoke_matrix(tmp_path)), "--store", str(store), "--wandb-project", "a/b")
    assert done.returncode == 2
    assert "--wandb-project" in done.stderr and "cannot contain '/'" in done.stderr
    assert "Traceback" not in done.stderr and not store.exists()
