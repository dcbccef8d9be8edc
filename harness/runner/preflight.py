"""Checks of ``run_matrix.py``'s inputs that need the machine, made before anything runs: the
cell command resolves to an executable, the store and report paths are usable, the data files
(their records and images) and model folders the cells share can be read, and a cell that asks
for ``runtime.device: cuda`` has one. Each failure is a ``ConfigError`` or ``StoreError``
(exit 2) whose one line says what to pass instead.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from harness.contracts.config import ConfigError
from harness.contracts.errors import writable_file
from harness.data.jsonl import DataError, check_dataset
from harness.runner.matrix import Cell
from harness.runner.store import StoreError

DEVICE_PROBE_TIMEOUT_S = 120.0
DATA_KEYS = ("data.train_path", "data.val_path", "data.test_path")
"""The dataset files of a ``data.kind: jsonl`` cell."""
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)?$")
"""A hub id (``name`` or ``org/name``): a ``model.path`` that is no local folder may be one."""


def cell_command(text: str | None) -> list[str] | None:
    """``--cell-command`` as argv (None: the default cell); its program must be executable."""
    if text is None:
        return None
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise ConfigError([f"cannot split {text!r} into words ({exc})"], "--cell-command") from None
    if not argv:
        raise ConfigError(["is empty; give a command, e.g. 'python my_cell.py'"], "--cell-command")
    if shutil.which(argv[0]) is None:
        where = "is not an executable file" if os.sep in argv[0] else "is not found on PATH"
        raise ConfigError(
            [
                f"`{argv[0]}` {where}; pass a program that exists (it is called as "
                "CMD CELL.yaml --out DIR --cell-id ID)"
            ],
            "--cell-command",
        )
    return argv


def store_root(root: str | os.PathLike[str], matrix_name: str) -> None:
    """The store folder and the matrix folder in it are folders where they exist (read-only
    check, also for --dry-run; writability is ``Store.ensure_writable``)."""
    for path in (Path(root), Path(root) / matrix_name):
        if path.exists() and not path.is_dir():
            raise StoreError(
                f"the run store path {path} is a file, not a folder; pass a folder with --store DIR"
            )


def report_path(path: str | None) -> None:
    """``--report PATH`` can be written (the default, in the store, is checked with the store)."""
    if path:
        writable_file(path, "--report")


def shared_inputs(cells: list[Cell], custom_command: bool, source: str) -> None:
    """What the cells read besides their config, checked once each before the first cell
    starts, as the cell would read it (``harness.data.jsonl``: every record and every image,
    torch-free), so that bad data is one line and exit 2 instead of one failed cell after another:
    the JSONL files of ``data.kind: jsonl`` and a ``model.path`` that names a local folder.
    Relative paths are the cells' (they run in this directory). Skipped for a custom cell
    command, which may run elsewhere."""
    if custom_command:
        return
    seen: set[str] = set()
    images: set[Path] = set()
    for cell in cells:
        for key, path in _shared_paths(cell.config):
            if path in seen:
                continue
            seen.add(path)
            problem = _model_problem(path) if key == "model.path" else _data_problem(path, images)
            if problem:
                users = sum(path in dict(_shared_paths(c.config)).values() for c in cells)
                raise ConfigError(
                    [f"`{key}` {problem} ({users} cell(s) use it; no cell was started)"], source
                )


def _shared_paths(config: dict) -> list[tuple[str, str]]:
    data, model = config["data"], config["model"]
    paths: list[tuple[str, str]] = []
    if data["kind"] == "jsonl":
        paths += [(k, data[k.split(".")[1]]) for k in DATA_KEYS if data[k.split(".")[1]]]
    if model["name"] != "tiny-vlm" and model.get("path"):
        paths.append(("model.path", model["path"]))
    return paths


def _data_problem(path: str, images: set[Path]) -> str | None:
    try:
        check_dataset(path, images)
    except DataError as exc:
        return str(exc)
    return None


def _model_problem(path: str) -> str | None:
    """Why ``path`` cannot be the model: a file, or neither a folder nor a hub id."""
    local = Path(path)
    if local.is_dir():
        return None
    if local.exists():
        return f"{path}: is a file; give the model's folder (config.json, weights, tokenizer)"
    if HUB_ID.match(path) and not local.is_absolute():
        return None  # a hub id: the cell loads it from the cache or the hub, or says why not
    return f"{path}: no such folder; give a local model folder or a hub id (org/name)"


def devices(cells: list[Cell], custom_command: bool, source: str) -> None:
    """A cell asking for ``runtime.device: cuda`` needs CUDA here. Decided by the cell's own
    check (``harness.cell.device.device_problem``) in a child process, so the runner never imports
    torch; skipped for a custom cell command, which may run elsewhere."""
    wanted = sorted({c.config["runtime"]["device"] for c in cells} - {"auto", "cpu"})
    if custom_command or not wanted:
        return
    code = (
        "import sys\nfrom harness.cell.device import device_problem\n"
        f"problems = [p for d in {wanted!r} if (p := device_problem(d))]\n"
        "print('; '.join(problems))\nsys.exit(3 if problems else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=DEVICE_PROBE_TIMEOUT_S,
        cwd=Path(__file__).resolve().parents[2],
    )
    if done.returncode == 3:
        users = sum(c.config["runtime"]["device"] in wanted for c in cells)
        raise ConfigError([f"{done.stdout.strip()} ({users} cell(s) ask for it)"], source)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError([f"cannot check `runtime.device` here ({tail})"], source)
