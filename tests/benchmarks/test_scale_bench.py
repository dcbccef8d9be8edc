"""Scale-out figures, measured side by side in one run (no thresholds on time: machines are noisy).

- ``experiments/smoke.yaml`` through the real CLI with ``--workers 2`` vs one worker, both with
  cold starts and with warm starts (target: 2 workers <= 0.65x the wall of 1); and the best
  setting vs today's sequential cold run.
- Cell start, from ``executor.start`` to the first training record in ``metrics.jsonl``, warm
  (forked from the preloaded server, already running) vs cold (a fresh interpreter): target
  <= 0.5 s warm.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.runner.executor import CellTask, LocalProcessExecutor
from harness.runner.matrix import load_matrix
from harness.runner.warm import WarmHandle

REPO = Path(__file__).resolve().parents[2]
WALLS: dict[str, float] = {}
STARTS: dict[str, float] = {}
SETTINGS = {
    "1 worker, cold": ["--workers", "1", "--cold-start"],
    "2 workers, cold": ["--workers", "2", "--cold-start"],
    "1 worker, warm": ["--workers", "1"],
    "2 workers, warm": ["--workers", "2"],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The smoke matrix's captchas, generated once so that no timed run pays for them."""
    cache = tmp_path_factory.mktemp("captcha")
    store = tmp_path_factory.mktemp("warmup")
    _smoke(store, cache, ["--max-cells", "1", "--cold-start"])
    return cache


def _smoke(store: Path, cache: Path, flags: list[str]) -> float:
    args = ["experiments/smoke.yaml", "--store", str(store), "--set", f"data.cache_dir={cache}"]
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "run_matrix.py", *args, "--quiet", *flags],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


@pytest.mark.slow
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_smoke_matrix_wall_by_workers(benchmark, tmp_path, data_dir, setting):
    wall = benchmark.pedantic(
        lambda: _smoke(tmp_path / "runs", data_dir, SETTINGS[setting]), rounds=1, iterations=1
    )
    WALLS[setting] = wall
    benchmark.extra_info["wall_s"] = wall
    if len(WALLS) == len(SETTINGS):
        cold = WALLS["2 workers, cold"] / WALLS["1 worker, cold"]
        warm = WALLS["2 workers, warm"] / WALLS["1 worker, warm"]
        best = min(WALLS, key=WALLS.__getitem__)
        today = WALLS[best] / WALLS["1 worker, cold"]
        benchmark.extra_info |= {"ratio_cold": cold, "ratio_warm": warm, "best_vs_today": today}
        print(
            "\nsmoke.yaml wall: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in WALLS.items())
            + f"\n2 workers / 1 worker: {cold:.2f}x cold, {warm:.2f}x warm; best ({best}) "
            f"vs today's sequential cold run: {today:.2f}x"
        )


def _first_step_s(executor: LocalProcessExecutor, cell, folder: Path) -> tuple[float, object]:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cell.config))
    task = CellTask(cell.cell_id, folder / "config.yaml", folder, folder / "cell.log")
    metrics = folder / "metrics.jsonl"
    t0 = time.perf_counter()
    handle = executor.start(task)
    while not (metrics.exists() and b'"train"' in metrics.read_bytes()):
        if handle.poll() is not None:
            raise AssertionError(f"the cell ended before its first step: {folder / 'cell.log'}")
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    handle.kill()
    while handle.poll() is None:
        time.sleep(0.01)
    return elapsed, handle


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cold", "warm"])
def test_cell_start_to_first_step(benchmark, tmp_path, data_dir, mode):
    sets = [("data.cache_dir", str(data_dir)), ("train.max_steps", 1000)]
    cell = load_matrix(str(REPO / "experiments" / "smoke.yaml"), sets).cells[0]
    executor = LocalProcessExecutor(warm=mode == "warm")
    rounds = iter(range(1000))
    try:
        if mode == "warm":  # the server's own start (once per run) is not a cell start
            _, handle = _first_step_s(executor, cell, tmp_path / "server")
            assert isinstance(handle, WarmHandle), executor.take_notes()
        times = []

        def start() -> None:
            elapsed, _ = _first_step_s(executor, cell, tmp_path / f"r{next(rounds)}")
            times.append(elapsed)

        benchmark.pedantic(start, rounds=3 if mode == "cold" else 5, iterations=1)
    finally:
        executor.close()
    STARTS[mode] = min(times)
    benchmark.extra_info["first_step_s"] = min(times)
    if len(STARTS) == 2:
        ratio = STARTS["warm"] / STARTS["cold"]
        benchmark.extra_info["warm_vs_cold"] = ratio
        print(
            f"\ncell start to first step: warm {STARTS['warm']:.2f} s vs cold "
            f"{STARTS['cold']:.2f} s ({ratio:.2f}x)"
        )
