"""The display's content, from the Progress protocol with a hand-driven clock: several running
cells, every ending (OOM, time cap, interrupted), 80 columns; the summary table."""

from __future__ import annotations

import io
import re

from rich.console import Console

from harness.runner.cell_text import cell_labels
from harness.runner.live import LiveProgress
from harness.runner.matrix import Cell
from harness.runner.progress import PlainProgress, summary_table

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
GIB = 2**30


def cell(cell_id: str, steps: int, **axes: object) -> Cell:
    return Cell(cell_id, {"train": {"max_steps": steps}}, axes, 0, 0)


CELLS = [
    cell("c1", 800, **{"attention.mode": "causal", "attention.impl": "sdpa", "data.question": "q"}),
    cell("c2", 400, **{"attention.mode": "prefix_bidirectional", "attention.impl": "sdpa"}),
    cell("c3", 800, **{"attention.mode": "prefix_bidirectional", "attention.impl": "eager_dense"}),
]
PAIRED = {"attention": ["attention.mode", "attention.impl"]}
TIME_CAP = {
    "outcome": "completed",
    "metrics": {"exact_match": 0.862},
    "train": {"steps": 241, "steps_planned": 800, "stop_reason": "time_cap"},
    "timings": {"wall_s": 150.0},
}
OOM = {
    "outcome": "oom",
    "oom": {"phase": "train", "in_use_bytes": int(1.9 * GIB), "budget_bytes": 2 * GIB},
}
INTERRUPTED = {"outcome": "interrupted", "error": {"type": "signal", "phase": "train"}}
FAILED = {
    "outcome": "failed",
    "error": {
        "type": "DataError",
        "phase": "setup",
        "message": "data/train.jsonl:3: field 'answer' must be a string, got int",
    },
}
REASON = "setup: DataError: data/train.jsonl:3: field 'answer' must be a string, got int"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def live(width: int) -> tuple[LiveProgress, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, force_terminal=True, width=width, color_system=None)
    return LiveProgress(console, cell_labels(CELLS, PAIRED), clock), out, clock


def screen(progress: LiveProgress, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(progress._render())
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_several_running_cells_each_show_label_step_loss_elapsed_and_eta():
    progress, _, clock = live(160)
    progress.start(3)
    for c in CELLS:
        progress.cell_start(c, c.config["train"]["max_steps"])
    for t, step in ((10.0, 10), (20.0, 20)):
        clock.now = t
        progress.record(CELLS[0], {"kind": "train", "step": step, "loss": 2.5 - step / 100})
    clock.now = 25.0
    progress.record(CELLS[1], {"kind": "train", "step": 400, "loss": 0.5})
    rows = screen(progress, 160)
    assert re.search(r"^cells\s.*\s0/3 done · 3 running · 0:25$", rows[0])
    # 10 steps in 10 s, 780 to go: 13 minutes; elapsed since the cell started
    assert re.search(r"causal·sdpa | q\s+━[━╸╺ ]*\s+20/800 loss 2\.3000  0:25  ETA 13:00", rows[1])
    assert re.search(r"prefix·sdpa\s+━+\s+400/400 loss 0\.5000  0:25  evaluating", rows[2])
    assert re.search(r"prefix·eager\s+[━╸╺ ]*\s0/800 loss -  0:25  starting", rows[3])
    progress.close()


def test_eta_stops_at_the_time_cap():
    progress, _, clock = live(160)
    capped = Cell("cap", {"train": {"max_steps": 800, "max_seconds": 150}}, {"seed": 1}, 0, 0)
    progress.start(1)
    progress.cell_start(capped, 800)
    for t, step in ((10.0, 10), (40.0, 40)):  # one step a second: 760 s to go, but capped
        clock.now = t
        progress.record(capped, {"kind": "train", "step": step, "loss": 1.0})
    assert re.search(r"40/800 loss 1\.0000  0:40  ETA 2:00$", screen(progress, 160)[1])
    progress.close()


def test_finished_cells_leave_one_line_and_only_finished_cells_count():
    progress, out, clock = live(80)
    progress.start(3)
    for c, summary in zip(CELLS, (TIME_CAP, OOM, INTERRUPTED), strict=True):
        progress.cell_start(c, c.config["train"]["max_steps"])
        clock.now += 30
        progress.record(c, {"kind": "train", "step": 12, "loss": 1.0})
        progress.cell_end(c, summary)
    progress.close()
    lines = [ln.rstrip() for ln in ANSI.sub("\n", out.getvalue()).splitlines() if ln.strip()]
    assert any(
        re.match(r"1/3 completed  causal·sdpa | q  exact match 86\.2% · time cap at 241/800", ln)
        for ln in lines
    ), lines
    assert "2/3 OOM  prefix·sdpa  in train, 1.90 GiB in use / budget 2.00 GiB  0:30  c2" in lines
    assert any(
        re.match(r"-/3 interrupted  prefix·eager  train, at step 12/800", ln) for ln in lines
    )
    assert re.search(r"cells\s.*\s2/3 done · 1 interrupted · 1:30$", lines[-1])
    assert all(len(ln) <= 80 for ln in lines), [ln for ln in lines if len(ln) > 80]


def test_a_narrow_terminal_elides_long_labels_and_keeps_every_column():
    long = [cell(f"l{i}", 100, **{"model.path": f"/models/a-very-long-model-name-{i}-x" * 2})
            for i in range(2)]  # fmt: skip
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    progress = LiveProgress(console, {"l0": "x" * 60, "l1": "y" * 60}, clock)
    progress.start(2)
    for c in long:
        progress.cell_start(c, 100)
        progress.record(c, {"kind": "train", "step": 5, "loss": 3.25})
    rows = screen(progress, 80)
    assert all(len(r) <= 80 - 3 for r in rows), rows
    for r, name in zip(rows[1:], "xy", strict=True):
        assert re.search(rf"{name}+…{name}+\s+[━╸╺ ]*\s5/100 loss 3\.2500  0:00  ETA", r), r
    progress.close()


def test_plain_lines_for_pipes_count_only_finished_cells():
    out = io.StringIO()
    progress = PlainProgress(out, cell_labels(CELLS, PAIRED))
    progress.start(3)
    progress.cell_start(CELLS[0], 800)
    progress.cell_end(CELLS[0], TIME_CAP)
    progress.cell_start(CELLS[1], 400)
    progress.record(CELLS[1], {"kind": "train", "step": 7, "loss": 1.0})
    progress.cell_end(CELLS[1], INTERRUPTED)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "started  causal·sdpa | q  (800 steps)  c1"
    assert lines[1].startswith("[1/3] completed  causal·sdpa | q  exact match 86.2% · time cap")
    assert lines[3] == "[-/3] interrupted  prefix·sdpa  train, at step 7/400  c2"
    assert lines[-1] == "1/3 cells done"


def test_summary_table_names_truncation_and_oom():
    rows = [(CELLS[0], TIME_CAP, "ran"), (CELLS[1], OOM, "ran"), (CELLS[2], None, "not run")]
    console = Console(width=160, record=True, file=io.StringIO(), color_system=None)
    console.print(summary_table(rows, cell_labels(CELLS, PAIRED)))
    text = console.export_text()
    assert re.search(
        r"c1\s+causal·sdpa | q\s+completed \(time cap at 241/800 steps\)\s+86\.2%", text
    )
    assert re.search(r"c2\s+prefix·sdpa\s+OOM \(in train, 1\.90 GiB in use / budget", text)
    assert re.search(r"c3\s+prefix·eager\s+not run", text)
    # a cell left out by --max-cells is "not run", never the `skipped` (predicted OOM) outcome
    console = Console(width=160, record=True, file=io.StringIO(), color_system=None)
    console.print(summary_table([(CELLS[2], None, "skipped")], cell_labels(CELLS, PAIRED)))
    assert re.search(r"c3\s+prefix·eager\s+not run \(--max-cells\)", console.export_text())


def test_a_failed_cell_shows_its_reason_live_in_plain_lines_and_in_the_table():
    progress, out, _clock = live(160)
    progress.start(1)
    progress.cell_start(CELLS[1], 400)
    progress.cell_end(CELLS[1], FAILED)
    progress.close()
    lines = [ln.rstrip() for ln in ANSI.sub("\n", out.getvalue()).splitlines() if ln.strip()]
    assert f"1/1 failed  prefix·sdpa  {REASON}  0:00  c2" in lines, lines
    plain = io.StringIO()
    progress = PlainProgress(plain, cell_labels(CELLS, PAIRED))
    progress.start(1)
    progress.cell_end(CELLS[1], FAILED)
    assert plain.getvalue().splitlines()[0] == f"[1/1] failed  prefix·sdpa  {REASON}  c2"
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(summary_table([(CELLS[1], FAILED, "ran")], cell_labels(CELLS, PAIRED)))
    assert re.search(rf"c2\s+prefix·sdpa\s+failed \({re.escape(REASON)}\)", console.export_text())
