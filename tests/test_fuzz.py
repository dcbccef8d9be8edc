"""Bad input of every kind, at every entry point: a non-zero exit, no traceback, and one line that
names the problem (README: "Bad input of any kind ... never a traceback").

Each case runs the entry point's ``main(argv)`` in this process (that is what the console scripts
call; an exception escaping it is a traceback and fails the case); the ``SUBPROCESS`` sample runs
again as a real process. Runner cases also check that nothing was written to the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

BOMB = 'a: &a ["l", "l", "l", "l", "l", "l", "l", "l", "l"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)
"""The YAML "billion laughs": 9**9 (387 million) strings once its aliases are expanded."""
FAKE_CELL = f"{sys.executable} {REPO / 'tests' / 'runner' / 'fake_cell.py'}"
MATRIX = {"name": "fz", "base": {"train": {"max_steps": 2}}, "matrix": {"seed": [0, 1]}}


def _inputs(root: Path) -> dict[str, Path]:
    """Every file the cases point at, written once."""
    import torch
    from safetensors.torch import save_file

    paths: dict[str, Path] = {}

    def put(name: str, data: bytes | str) -> None:
        path = root / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        paths[name.split(".")[0]] = path

    put("good.yaml", yaml.safe_dump(MATRIX))
    put("latin1.yaml", "name: caf\xe9\nmatrix: {seed: [0]}\n".encode("latin-1"))
    put("binary.yaml", bytes(range(256)) * 4)
    put("control.yaml", b"\x00\x01\x02 garbage \x03")
    put("empty.yaml", b"")
    put("truncated.yaml", "name: fz\nmatrix: {seed: [0, 1")
    put("toplist.yaml", "- seed: 0\n- seed: 1\n")
    put("bomb.yaml", BOMB + "matrix: {seed: [0]}\n")
    put("loop.yaml", "a: &a [*a]\nmatrix: {seed: [0]}\n")
    put("wrongtype.yaml", "matrix: {train.lr: [fast]}\n")
    put("hugeint.yaml", "matrix: {train.max_steps: [99999999999999999999999]}\n")
    put("digits.yaml", f"matrix: {{seed: [{'9' * 5000}]}}\n")
    put("inf.yaml", "base: {train: {lr: .inf}}\nmatrix: {seed: [0]}\n")
    put("cuda.yaml", yaml.safe_dump({**MATRIX, "base": {"runtime": {"device": "cuda"}}}))
    put("cell_unknown.yaml", "train: {max_step: 5}\n")
    put("cell_list.yaml", "- 1\n- 2\n")
    put("cell_cuda.yaml", "runtime: {device: cuda}\n")
    put("notes.txt", "hello\n")
    with open(root / "huge.yaml", "wb") as fh:  # sparse: 65 MiB that take no disk
        fh.truncate(65 * 2**20)
    paths["huge"] = root / "huge.yaml"
    put("secret.yaml", yaml.safe_dump(MATRIX))
    paths["secret"].chmod(0)
    weights = root / "w.safetensors"
    save_file({"w": torch.zeros(64, 64)}, weights)
    put("cut.safetensors", weights.read_bytes()[:-100])
    put("junk.safetensors", b"\x00\x01not a safetensors file at all")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"w": torch.zeros(2), "evil": Evil()}, root / "evil.pt")
    paths["evil"] = root / "evil.pt"
    rows = root / "rows"
    rows.mkdir()
    torch.save(
        {"row_start": 4, "row_end": 8, "embeddings": torch.zeros(4, 2)}, rows / "trainable_rows.pt"
    )
    (rows / "token_space.json").write_bytes(b"\xff\xfe{not json")
    paths["rows"] = rows
    for name in ("emptydir", "store/fz"):
        (root / name).mkdir(parents=True)
    paths["emptydir"] = root / "emptydir"
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    paths["symloop"] = root / "loop_a"
    paths["root"] = root
    return paths


# (id, entry point, argv, a fragment of the one error line)
CASES: list[tuple[str, str, list[str], str]] = [
    ("matrix-not-utf8", "run", ["{latin1}"], "not UTF-8 text (byte 0xe9 on line 1)"),
    ("matrix-binary-garbage", "run", ["{binary}"], "not UTF-8 text"),
    ("matrix-control-chars", "run", ["{control}"], "malformed YAML"),
    ("matrix-is-a-directory", "run", ["{emptydir}"], "is a directory; pass the YAML file"),
    ("matrix-missing", "run", ["{root}/nope.yaml"], "YAML file not found"),
    (
        "matrix-under-a-file",
        "run",
        ["{notes}/m.yaml"],
        "cannot read the YAML file (Not a directory)",
    ),
    ("matrix-symlink-loop", "run", ["{symloop}"], "Too many levels of symbolic links"),
    ("matrix-permission-denied", "run", ["{secret}"], "Permission denied"),
    ("matrix-empty", "run", ["{empty}"], "got an empty file"),
    ("matrix-65-mib", "run", ["{huge}"], "is 65 MiB, not a YAML file"),
    ("matrix-truncated", "run", ["{truncated}"], "malformed YAML"),
    (
        "matrix-a-list",
        "run",
        ["{toplist}"],
        "expected a mapping with `base` and `matrix`, got list",
    ),
    ("matrix-alias-bomb", "run", ["{bomb}"], "alias bomb"),
    ("matrix-alias-loop", "run", ["{loop}"], "refers to a value that contains it"),
    ("axis-wrong-type", "run", ["{wrongtype}"], "`train.lr`: expected a number, got 'fast'"),
    ("axis-huge-int", "run", ["{hugeint}"], "is out of range (a 64-bit integer)"),
    ("axis-5000-digits", "run", ["{digits}"], "use a smaller number"),
    ("base-infinite-lr", "run", ["{inf}"], "`train.lr`: expected a finite number"),
    (
        "cell-command-missing",
        "run",
        ["{good}", "--cell-command", "no-such-command"],
        "not found on PATH",
    ),
    ("cell-command-quotes", "run", ["{good}", "--cell-command", "'python"], "cannot split"),
    ("store-is-a-file", "run", ["{good}", "--store", "{notes}"], "is a file, not a folder"),
    (
        "store-unwritable",
        "run",
        ["{good}", "--store", "/proc/nope"],
        "cannot write to the run store",
    ),
    ("report-is-a-folder", "run", ["{good}", "--report", "{emptydir}"], "is a folder"),
    (
        "report-under-a-file",
        "run",
        ["{good}", "--report", "{notes}/r.md"],
        "is a file, not a folder",
    ),
    ("max-cells-negative", "run", ["{good}", "--max-cells", "-1"], "must be >= 0"),
    ("max-cells-not-a-number", "run", ["{good}", "--max-cells", "lots"], "expected a whole number"),
    ("set-without-value", "run", ["{good}", "--set", "train.lr"], "expected KEY=VALUE"),
    ("only-unknown-key", "run", ["{good}", "--only", "trian.lr=1"], "unknown key `trian.lr`"),
    ("json-without-dry-run", "run", ["{good}", "--json"], "--json only applies to --dry-run"),
    ("device-cuda-without-cuda", "run", ["{cuda}"], "no usable CUDA device"),
    ("cell-config-is-a-directory", "cell", ["{emptydir}", "--out", "{root}/o"], "is a directory"),
    ("cell-config-not-utf8", "cell", ["{latin1}", "--out", "{root}/o"], "not UTF-8 text"),
    ("cell-config-alias-bomb", "cell", ["{bomb}", "--out", "{root}/o"], "alias bomb"),
    (
        "cell-unknown-key",
        "cell",
        ["{cell_unknown}", "--out", "{root}/o"],
        "did you mean `train.max_steps`",
    ),
    ("cell-config-a-list", "cell", ["{cell_list}", "--out", "{root}/o"], "expected a mapping"),
    ("cell-out-is-a-file", "cell", ["{empty}", "--out", "{notes}"], "is a file, not a folder"),
    ("cell-out-unwritable", "cell", ["{empty}", "--out", "/proc/nope"], "cannot write"),
    ("cell-device-cuda", "cell", ["{cell_cuda}", "--out", "{root}/o"], "no usable CUDA device"),
    ("cell-no-out", "cell", ["{empty}"], "the following arguments are required: --out"),
    ("report-store-missing", "reports", ["{root}/nope"], "no such store directory"),
    ("report-store-is-a-file", "reports", ["{notes}"], "is a file; pass the run store folder"),
    ("report-store-empty", "reports", ["{emptydir}"], "empty store"),
    ("report-store-symlink-loop", "reports", ["{symloop}"], "no such store directory"),
    (
        "report-out-is-a-folder",
        "reports",
        ["{root}/store/fz", "--out", "{emptydir}"],
        "is a folder",
    ),
    (
        "report-compare-missing",
        "reports",
        ["compare", "{root}/nope", "{emptydir}"],
        "no such store",
    ),
    ("loader-missing-path", "loaders", ["inspect", "{root}/nope"], "does not exist"),
    ("loader-text-file", "loaders", ["inspect", "{notes}"], "unrecognised file type '.txt'"),
    ("loader-truncated", "loaders", ["inspect", "{cut}"], "truncated or corrupt"),
    ("loader-binary-garbage", "loaders", ["inspect", "{junk}"], "not a readable safetensors file"),
    ("loader-planted-pickle", "loaders", ["inspect", "{evil}"], "refused to unpickle"),
    (
        "loader-token-space-garbage",
        "loaders",
        ["inspect", "{rows}"],
        "token_space.json: not valid JSON",
    ),
    (
        "loader-alpha-nan",
        "loaders",
        ["inspect", "{cut}", "--base-model", "{emptydir}", "--lora-alpha", "nan"],
        "lora_alpha=nan",
    ),
    ("loader-no-command", "loaders", [], "the following arguments are required: command"),
    ("captcha-out-is-a-file", "captcha", ["--output-dir", "{notes}", "--count", "2"], "is a file"),
    ("captcha-huge-width", "captcha", ["--width", "1000000000"], "larger than 4096x4096"),
    ("captcha-count-zero", "captcha", ["--count", "0"], "must be positive"),
    ("captcha-count-huge", "captcha", ["--count", "9" * 30], "count must be between 1 and"),
    ("captcha-bad-split", "captcha", ["--split", "../x", "--count", "2"], "split '../x' must be"),
    ("captcha-subset-too-big", "captcha", ["--count", "2", "--subset", "3"], "larger than --count"),
]

SUBPROCESS = {
    "matrix-not-utf8",
    "cell-config-is-a-directory",
    "cell-command-missing",
    "report-store-is-a-file",
    "loader-planted-pickle",
    "captcha-huge-width",
}
"""Cases also run as real processes (the console scripts' own exit status and stderr)."""

COMMANDS = {
    "run": [sys.executable, "run_matrix.py"],
    "cell": [sys.executable, "-m", "harness.cell"],
    "reports": [sys.executable, "-m", "reports"],
    "loaders": [sys.executable, "-m", "loaders"],
    "captcha": [sys.executable, "-m", "harness.data.captcha"],
}


def _main(entry: str) -> Callable[[list[str]], int]:
    if entry == "run":
        from harness.runner.cli import main
    elif entry == "cell":
        from harness.cell.run import main
    elif entry == "reports":
        from reports.__main__ import main
    elif entry == "loaders":
        from loaders.__main__ import main
    else:
        from harness.data.captcha import main
    return main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return _inputs(tmp_path_factory.mktemp("fuzz"))


def _skip_if_not_applicable(case_id: str) -> None:
    if "permission" in case_id and os.geteuid() == 0:
        pytest.skip("root reads every file: no permission error to provoke")
    if "cuda" in case_id:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")


def _argv(entry: str, args: list[str], inputs: dict[str, Path], tmp_path: Path) -> list[str]:
    argv = [a.format(**{k: str(v) for k, v in inputs.items()}) for a in args]
    if entry == "run" and "--store" not in args:
        argv += ["--store", str(tmp_path / "runs")]
    if entry == "run" and "--cell-command" not in args and "{cuda}" not in args:
        argv += ["--cell-command", FAKE_CELL]  # were a check missing, a fast cell would run
    return argv


def _one_clear_line(code: int, err: str, fragment: str) -> None:
    assert code == 2, f"exit {code}, expected 2 (bad input):\n{err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line:\n{err}"
    assert "error" in lines[0] and fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def test_the_table_covers_every_entry_point_with_at_least_30_cases():
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)
    assert {c[1] for c in CASES} == set(COMMANDS)
    assert {c[0] for c in CASES} >= SUBPROCESS and {
        e for c, e, _, _ in CASES if c in SUBPROCESS
    } == set(COMMANDS)


@pytest.mark.parametrize(("case_id", "entry", "args", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(
    inputs, tmp_path, capsys, monkeypatch, case_id, entry, args, fragment
):
    _skip_if_not_applicable(case_id)
    monkeypatch.chdir(tmp_path)  # captcha-data's default --output-dir is relative
    argv = _argv(entry, args, inputs, tmp_path)
    try:
        code = _main(entry)(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    _one_clear_line(code, capsys.readouterr().err, fragment)
    assert not (tmp_path / "runs").exists()  # nothing run or written
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("case_id", "entry", "args", "fragment"),
    [c for c in CASES if c[0] in SUBPROCESS],
    ids=[c[0] for c in CASES if c[0] in SUBPROCESS],
)
def test_the_same_as_a_real_process(inputs, tmp_path, case_id, entry, args, fragment):
    done = subprocess.run(
        [*COMMANDS[entry], *_argv(entry, args, inputs, tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _one_clear_line(done.returncode, done.stderr, fragment)
    assert done.stdout == ""
    assert not (tmp_path / "runs").exists()


def test_the_alias_bomb_is_refused_without_being_expanded(monkeypatch):
    """Refused from the composed node graph: the constructor never runs, nothing is expanded."""
    from harness.contracts.yaml_io import YamlLoader, parse_yaml

    def construct(*args, **kwargs):
        raise AssertionError("the document was constructed")

    monkeypatch.setattr(YamlLoader, "construct_document", construct)
    errors: list[str] = []
    assert parse_yaml(BOMB, errors) is None
    assert len(errors) == 1 and "alias bomb" in errors[0]
