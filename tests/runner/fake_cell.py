"""A stand-in for ``python -m harness.cell`` that misbehaves on request (runner tests only).

Same command line and files as the real cell. The behaviour is read from the config's
``data.question`` (a free-form string field): ``ok`` (default), ``raise``, ``hang``,
``hang_ignore_term``, ``selfkill``, ``exit0``, ``nan``; ``train.max_steps`` records are written,
sleeping ``eval.max_new_tokens / 1000`` seconds per step. With ``FAKE_CELL_STARTS=PATH`` set,
every start appends ``<cell id> <pid>`` to PATH first (a record of attempts outside the store);
the summary's provenance holds the pid of the process that wrote it. Its log's second line gives
the worker settings it got (``OMP_NUM_THREADS``, ``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

from harness.contracts.store_files import write_json


def summary(cell_id: str, cfg: dict, outcome: str, **extra: object) -> dict:
    return {
        "outcome": outcome,
        "cell_id": cell_id,
        "seed": cfg["seed"],
        "metrics": {"exact_match": 0.5, "exact_match_k": 1, "n": 2},
        "memory": {"train": {"peak_bytes": 2**20}},
        "timings": {"wall_s": 0.1},
        "provenance": {"fake": True, "pid": os.getpid()},
        **extra,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--out", required=True)
    p.add_argument("--cell-id", required=True)
    args = p.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    out, behaviour = Path(args.out), cfg["data"]["question"]
    delay = cfg["eval"]["max_new_tokens"] / 1000

    def on_signal(signum: int, frame: object) -> None:
        write_json(
            out / "summary.json",
            summary(
                args.cell_id,
                cfg,
                "interrupted",
                error={"type": "Interrupted", "message": "signal", "phase": "train"},
            ),
        )
        sys.exit(1)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if behaviour == "hang_ignore_term" else on_signal)
    starts = os.environ.get("FAKE_CELL_STARTS")
    if starts:
        fd = os.open(starts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{args.cell_id} {os.getpid()}\n".encode())
        os.close(fd)
    slot = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")}
    print(f"fake cell {args.cell_id} starting ({behaviour})", flush=True)
    print(f"env {json.dumps(slot)}", flush=True)
    with open(out / "metrics.jsonl", "a") as fh:
        for step in range(1, cfg["train"]["max_steps"] + 1):
            fh.write(json.dumps({"kind": "train", "step": step, "loss": 1.0 / step}) + "\n")
            fh.flush()
            time.sleep(delay)
    if behaviour == "raise":
        raise RuntimeError("boom from the fake cell")
    if behaviour.startswith("hang"):
        while True:
            time.sleep(0.05)
    if behaviour == "selfkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if behaviour == "exit0":
        return 0
    outcome = "diverged" if behaviour == "nan" else "completed"
    write_json(out / "summary.json", summary(args.cell_id, cfg, outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
