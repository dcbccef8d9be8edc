"""One walker over annotations and one unknown-key wording (harness/contracts/validate.py,
keys.py), for a cell key, a matrix's top-level key and its ``tracking:`` section, and for a
run-store file on read."""

from __future__ import annotations

import pytest

from harness.contracts.config import ConfigError
from harness.contracts.schema import Summary
from harness.contracts.validate import MAX_SHOWN, check_fields, coerce
from harness.runner.matrix import build_matrix


def problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_matrix({"matrix": {"seed": [0]}, **raw}, "m.yaml", [])
    return info.value.errors


def test_an_unknown_key_reads_the_same_at_every_level():
    assert problems({"reapeats": 2}) == [
        "unknown top-level key `reapeats` - did you mean `repeats`?"
    ]
    assert problems({"tracking": {"projet": "p"}}) == [
        "unknown key `tracking.projet` - did you mean `project`?"
    ]
    assert problems({"base": {"train": {"max_step": 1}}}) == [
        "base: unknown key `train.max_step` - did you mean `train.max_steps`?"
    ]
    (line,) = problems({"tracking": {"zzz": 1}})
    assert line == (
        "unknown key `tracking.zzz` (valid: entity, finish_timeout_s, log_model, mode, "
        "project, tags)"
    )


def test_a_wrong_type_reads_the_same_in_a_cell_and_in_tracking():
    assert problems({"tracking": {"log_model": "yes"}}) == [
        "`tracking.log_model`: expected true or false, got 'yes'"
    ]
    assert problems({"base": {"checkpoint": {"peft_dir": "yes"}}}) == [
        "base: `checkpoint.peft_dir`: expected true or false, got 'yes'"
    ]
    assert problems({"tracking": {"tags": ["ok", 5]}}) == [
        "`tracking.tags[1]`: expected a string, got 5"
    ]


def test_a_long_value_is_cut_to_one_length_in_both_modes():
    long = "x" * 500
    errors: list[str] = []
    coerce(long, int, "train.max_steps", errors)
    stored = check_fields(Summary, {"outcome": 3, "cell_id": long, "seed": long})
    for line in (*errors, *stored[1:]):
        value = line.split("got ", 1)[1]
        assert len(value) == MAX_SHOWN and value.endswith("..."), line
    assert stored[0] == "`outcome` should be str, got 3"


def test_stored_numbers_are_data_and_user_numbers_are_checked():
    """A diverged cell's NaN loss or a count past 64 bits is read back; in a config neither is."""
    stored = {"outcome": "diverged", "cell_id": "c", "seed": 2**70}
    assert check_fields(Summary, {**stored, "train": {"last_loss": float("nan")}}) == []
    errors: list[str] = []
    coerce(float("nan"), float, "train.lr", errors)
    coerce(2**70, int, "seed", errors)
    assert errors == [
        "`train.lr`: expected a finite number, got nan",
        "`seed`: 1180591620717411303424 is out of range (a 64-bit integer)",
    ]
