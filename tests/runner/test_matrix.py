"""Matrix expansion against hand-computed cell lists, and validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.contracts.config import ConfigError, parse_cell_config, to_dict
from harness.contracts.identity import config_hash
from harness.runner.matrix import build_matrix, load_matrix, parse_assignment, select

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def axes(raw: dict, overrides: list | None = None) -> list[dict]:
    return [c.axes for c in build_matrix(raw, "m.yaml", overrides or []).cells]


def errors(raw: dict | None, overrides: list | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_matrix(raw, "m.yaml", overrides or [])
    assert info.value.source == "m.yaml"
    return info.value.errors


def test_grid_is_the_cartesian_product_first_axis_slowest():
    raw = {
        "matrix": {"attention.mode": ["causal", "prefix_bidirectional"], "train.grad_accum": [4, 8]}
    }
    assert axes(raw) == [
        {"attention.mode": "causal", "train.grad_accum": 4},
        {"attention.mode": "causal", "train.grad_accum": 8},
        {"attention.mode": "prefix_bidirectional", "train.grad_accum": 4},
        {"attention.mode": "prefix_bidirectional", "train.grad_accum": 8},
    ]


def test_exclude_drops_matching_combinations():
    raw = {
        "matrix": {
            "attention.mode": ["causal", "prefix_bidirectional"],
            "attention.impl": ["sdpa", "eager_dense"],
        },
        "exclude": [{"attention.mode": "causal", "attention.impl": "eager_dense"}],
    }
    assert axes(raw) == [
        {"attention.mode": "causal", "attention.impl": "sdpa"},
        {"attention.mode": "prefix_bidirectional", "attention.impl": "sdpa"},
        {"attention.mode": "prefix_bidirectional", "attention.impl": "eager_dense"},
    ]


def test_include_extends_matching_cells_or_adds_a_cell():
    raw = {
        "matrix": {"train.grad_accum": [4, 8]},
        "include": [
            {"train.grad_accum": 8, "train.lr": 0.002},  # extends the ga=8 cell
            {"train.grad_accum": 16},  # matches nothing: a new cell
            {"model": {"num_layers": 3}},
        ],
    }  # no axis key: extends every grid cell
    assert axes(raw) == [
        {"train.grad_accum": 4, "model.num_layers": 3},
        {"train.grad_accum": 8, "train.lr": 0.002, "model.num_layers": 3},
        {"train.grad_accum": 16},
    ]


def test_paired_axis_varies_keys_together():
    raw = {
        "matrix": {
            "attention.mode": ["causal", "prefix_bidirectional"],
            "batch": [
                {"train.micro_batch": 8, "train.grad_accum": 4},
                {"train": {"micro_batch": 4, "grad_accum": 8}},
            ],
        }
    }
    cells = build_matrix(raw, "m.yaml", []).cells
    assert [c.axes for c in cells] == [
        {"attention.mode": m, "train.micro_batch": mb, "train.grad_accum": ga}
        for m in ("causal", "prefix_bidirectional")
        for mb, ga in ((8, 4), (4, 8))
    ]
    assert {c.config["train"]["micro_batch"] * c.config["train"]["grad_accum"] for c in cells} == {
        32
    }


def test_repeats_derive_seeds_and_seeds_are_explicit():
    raw = {"base": {"seed": 10}, "matrix": {"train.grad_accum": [4, 8]}, "repeats": 2}
    cells = build_matrix(raw, "m.yaml", []).cells
    assert [(c.axes, c.repeat, c.config["seed"]) for c in cells] == [
        ({"train.grad_accum": 4, "seed": 10}, 0, 10),
        ({"train.grad_accum": 4, "seed": 11}, 1, 11),
        ({"train.grad_accum": 8, "seed": 10}, 0, 10),
        ({"train.grad_accum": 8, "seed": 11}, 1, 11),
    ]
    raw = {"matrix": {"train.grad_accum": [4]}, "seeds": [3, 7]}
    assert [c.config["seed"] for c in build_matrix(raw, "m.yaml", []).cells] == [3, 7]


def test_overrides_win_and_duplicates_merge():
    raw = {"matrix": {"train.grad_accum": [4, 8]}}
    matrix = build_matrix(raw, "m.yaml", [("train.grad_accum", 2), ("train.lr", 1)])
    assert len(matrix.cells) == 1 and matrix.duplicates == 1
    assert matrix.cells[0].config["train"]["lr"] == 1.0  # normalized to float
    assert matrix.cells[0].axes == {"train.grad_accum": 2}


def test_cell_id_is_the_resolved_config_hash_and_ignores_file_order():
    a = build_matrix({"matrix": {"train.lr": [1e-3, 2e-3], "seed": [1]}}, "a", []).cells
    b = build_matrix({"matrix": {"seed": [1], "train.lr": [0.002, 0.001]}}, "b", []).cells
    assert {c.cell_id for c in a} == {c.cell_id for c in b}
    for cell in a:
        parsed = parse_cell_config(cell.config)
        assert to_dict(parsed) == cell.config
        assert config_hash(parsed) == cell.cell_id


def test_validation_reports_every_problem_with_hints():
    errs = errors(
        {
            "nmae": "x",
            "base": {"train": {"grad_acum": 4, "lr": "fast"}, "model": 3},
            "matrix": {"train.grad_acum": [1], "attention.mode": ["causl"], "train.lr": []},
        },
        [("train.max_step", 5)],
    )
    assert errs == [
        "unknown top-level key `nmae` - did you mean `name`?",
        "base: unknown key `train.grad_acum` - did you mean `train.grad_accum`?",
        "base: `train.lr`: expected a number, got 'fast'",
        "base: `model`: expected a mapping of fields, got 3",
        "matrix: unknown key `train.grad_acum` - did you mean `train.grad_accum`?",
        "matrix: `attention.mode`: 'causl' is not one of: causal, prefix_bidirectional,"
        " image_bidirectional, native - did you mean `causal`?",
        "matrix.train.lr: expected a non-empty list of values, got []",
        "--set unknown key `train.max_step` - did you mean `train.max_steps`?",
    ]


def test_cell_level_errors_name_the_cell_and_are_deduplicated():
    errs = errors(
        {
            "base": {"model": {"hidden_size": 100}},
            "matrix": {"model.num_heads": [3, 4], "seed": [0, 1]},
        }
    )
    assert errs == [
        "cell {model.num_heads=3, seed=0}: `model.hidden_size` (100) must be divisible "
        "by `model.num_heads` (3) (and 1 more cell(s))"
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "expected a mapping with `base` and `matrix`, got an empty file"),
        ({"matrix": {}}, "the matrix is empty"),
        ({"matrix": {"seed": [0]}, "exclude": [{"seed": 0}]}, "expands to 0 cells"),
        ({"matrix": {"b": [{"seed": 1}, {"train.lr": 1}]}}, "must set the same keys"),
        ({"matrix": {"seed": [0]}, "repeats": 2, "seeds": [1]}, "either `repeats`"),
        ({"name": "a/b", "matrix": {"seed": [0]}}, "not a valid folder name"),
        ({"matrix": {"seed": [0], "x": [{"seed": 1}]}}, "already varied by axis `seed`"),
        ({"matrix": {"train": [1]}}, "`train` is a section"),
    ],
)
def test_bad_matrices_are_explained(raw, expected):
    assert any(expected in e for e in errors(raw)), errors(raw)


def test_load_matrix_reports_file_problems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("matrix: [unclosed\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_matrix(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_matrix(tmp_path / "missing.yaml")
    ok = tmp_path / "ok.yaml"
    ok.write_text("matrix:\n  train.lr: [1e-3]\n")  # YAML 1.1 would read 1e-3 as a string
    matrix = load_matrix(ok)
    assert matrix.name == "ok" and matrix.cells[0].config["train"]["lr"] == 0.001


def test_select_and_parse_assignment():
    cells = build_matrix({"matrix": {"train.grad_accum": [1, 2, 4], "seed": [0, 1]}}, "m", []).cells
    only = [
        parse_assignment("train.grad_accum=2", "--only"),
        parse_assignment("train.grad_accum=4", "--only"),
        parse_assignment("seed=1", "--only"),
    ]
    assert [c.axes for c in select(cells, only)] == [
        {"train.grad_accum": 2, "seed": 1},
        {"train.grad_accum": 4, "seed": 1},
    ]
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignment("train.lr", "--set")


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_experiment_file_validates_and_names_its_command(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# python run_matrix.py experiments/") and path.name in first
    assert load_matrix(path).cells
