"""Resume points: a cell stopped mid-training continues from its last one when it runs again.

With ``checkpoint.resume_every: N`` the training loop writes, every N optimizer steps (after
that step's validation), everything the rest of the run depends on into ``<cell>/resume/``:

- ``state-<step>.pt`` (``torch.save``, read back with ``weights_only=True``): the trained
  weights (frozen parameters are rebuilt from the seed and ``model.path``), the optimizer's and
  the grad scaler's state, the torch (CPU and CUDA), numpy and Python RNG states, the batches the
  data order has drawn (the order is a pure function of the seed: it is replayed, not stored),
  and the progress so far (``TrainResult``: the loss curve, the best and last validation).
  The learning rate is a function of the step (``train.lr_at``): no scheduler state to keep.
- ``best-<step>-<inode>.safetensors``: a hard link (a copy where links fail) of
  ``ckpt/best.safetensors`` as it was then: a best checkpoint written after the point cannot
  stand in for it.
- ``resume.json`` (``schema.ResumeManifest``), the commit record, written last: the state file's
  size and SHA-256, the best file's size, and the length metrics.jsonl had at that step.

Each file is written to a temporary name, fsynced and renamed (``durable.py``), the directory
fsynced; the manifest names only files already complete, so a kill at any moment leaves the
previous point or the new one, never half of one. Files no manifest names are removed after the switch.

When the cell starts it looks for a point (``prepare``): a usable one (its checksum and sizes
right, written by the same config) cuts metrics.jsonl back to that step, puts its best
checkpoint back and the loop continues at the next step (``restore``); a damaged one, or one of
another config, is reported in one line (``summary.train.resume_note``) and the cell starts
from step 0 with the earlier attempt's files cleared. The cell removes its point when it ends
with a result or ``failed`` (but for a full disk); after ``interrupted`` or ``timeout``, or a
kill it cannot see, the point stays for the next attempt. The result is bit-identical to an uninterrupted run on CPU
(tests/runner/test_resume_kill.py); GPU kernels that are not deterministic make it as close as
two uninterrupted GPU runs are.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.cell.durable import (
    FileCheckError,
    check_file,
    fsync_dir,
    fsync_path,
    link_or_copy,
    save_synced,
)
from harness.cell.evaluate import EvalResult
from harness.contracts import checkpoint_meta as cm
from harness.contracts import schema
from harness.contracts.config import CellConfig
from harness.contracts.errors import DISK_FULL_ERRNOS
from harness.contracts.identity import config_hash
from harness.contracts.outcomes import KEEPS_RESUME_POINT, now_iso
from harness.contracts.schema import Prediction, ResumeManifest, SchemaError, TrainRecord
from harness.contracts.store_files import atomic_write_text, read_resume_manifest, write_json

STATE_FORMAT = 1
"""Version of the state file's layout; a point of another version is not used."""
BEST_FILE = "best.safetensors"


class ResumeError(Exception):
    """A resume point that cannot be used; the message says why (one line)."""


class ResumePoints:
    """The resume points of one attempt of a cell: the one it starts from, the ones it writes."""

    def __init__(self, cfg: CellConfig, out: Path) -> None:
        self.cfg, self.out = cfg, out
        self.dir = out / schema.RESUME_DIR
        self.every = cfg.checkpoint.resume_every or 0
        self.cell_hash = config_hash(cfg)
        self.state: dict[str, Any] | None = None
        """The loaded state of the point this attempt continues from."""
        self.resumed_at: int | None = None
        self.note: str | None = None
        """Why a point found in the folder was not used."""
        self.restored_best = False
        """``ckpt/best.safetensors`` was put back from the point."""

    # ------------------------------------------------------------------ starting
    @classmethod
    def prepared(cls, cfg: CellConfig, out: Path, model, summary: schema.Summary) -> ResumePoints:
        """The points of this attempt, ``prepare``d, with what it found in ``summary``."""
        points = cls(cfg, out)
        points.prepare(model)
        summary.train.resumed_at, summary.train.resume_note = points.resumed_at, points.note
        if points.restored_best:
            summary.checkpoints["best"] = f"{schema.CKPT_DIR}/{BEST_FILE}"
        return points

    def prepare(self, model: torch.nn.Module) -> None:
        """Before metrics.jsonl is opened, with the model built: load the point in the cell
        folder, if there is one that fits the model, and put the folder back to that step;
        without a usable one clear what an earlier attempt left, so that this one starts from
        step 0 in a clean folder."""
        manifest = None
        if (self.dir / schema.RESUME_MANIFEST).exists():
            try:
                manifest, self.state = self._load()
                _check_fits(self.state, model)
            except (ResumeError, FileCheckError) as exc:
                manifest, self.state = None, None
                self.note = f"resume point not used, training from step 0: {exc}"
                print(f"note: {self.note}", file=sys.stderr)
        if manifest is None:
            self._clear_earlier_attempt()
            return
        # replaced, not truncated in place: a runner following the file sees a new inode
        atomic_write_text(self.out / schema.METRICS_FILE, self.state.pop("metrics_prefix"))
        ckpt = self.out / schema.CKPT_DIR
        shutil.rmtree(ckpt, ignore_errors=True)
        if manifest.get("best"):
            ckpt.mkdir(parents=True)
            link_or_copy(self.dir / manifest["best"], ckpt / BEST_FILE)
            self.restored_best = True
        self.resumed_at = manifest["step"]
        print(f"resumed at step {self.resumed_at}/{manifest['steps_planned']}", file=sys.stderr)

    def _clear_earlier_attempt(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.out / schema.CKPT_DIR, ignore_errors=True)
        metrics = self.out / schema.METRICS_FILE
        if metrics.exists():  # emptied by rename: a new inode, which a runner's tail notices
            atomic_write_text(metrics, "")

    def _load(self) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            manifest = read_resume_manifest(self.dir / schema.RESUME_MANIFEST)
        except SchemaError as exc:
            raise ResumeError(str(exc)) from None
        if manifest["config_hash"] != self.cell_hash:
            raise ResumeError(
                f"written by config {manifest['config_hash']}, this cell is {self.cell_hash}"
            )
        state_path = self.dir / manifest["state"]
        check_file(state_path, manifest["state_bytes"], manifest["state_sha256"])
        if manifest.get("best"):
            check_file(self.dir / manifest["best"], manifest.get("best_bytes"), None)
        prefix = _metrics_prefix(self.out / schema.METRICS_FILE, manifest)
        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a file that hashes right but does not load: a bug, said once
            raise ResumeError(f"{state_path} does not load ({type(exc).__name__}: {exc})") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ResumeError(f"{state_path} is not a version-{STATE_FORMAT} resume state")
        if state.get("step") != manifest["step"]:
            raise ResumeError(
                f"{state_path} holds step {state.get('step')}, not {manifest['step']}"
            )
        state["metrics_prefix"] = prefix
        return manifest, state

    def restore(self, model, optimizer, scaler, order, res) -> int:
        """Put the loaded point into a freshly built model, optimizer, scaler, data order and
        result; returns the steps already done (0 without a point)."""
        state = self.state
        if state is None:
            return 0
        model.load_state_dict(state["model"], strict=False)  # fits: _check_fits
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        for _ in range(state["batches_drawn"]):
            next(order)
        _restore_result(res, state["result"])
        _set_rng(state["rng"])
        self.state = None  # the tensors now live in the model and the optimizer
        return int(state["step"])

    # ------------------------------------------------------------------ writing
    def after_step(self, step: int, model, optimizer, scaler, res) -> None:
        """Write a resume point after optimizer step ``step`` (and its validation) when the
        cadence says so."""
        if self.every and step % self.every == 0:
            self.write(step, model, optimizer, scaler, res)

    def write(self, step: int, model, optimizer, scaler, res) -> None:
        """One resume point, atomically (module docstring)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        state = {
            "format": STATE_FORMAT,
            "step": step,
            "model": _trained_state(model),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": _rng_state(),
            "batches_drawn": step * self.cfg.train.grad_accum,
            "result": dataclasses.asdict(res),
        }
        name = f"state-{step:08d}.pt"
        size, digest = save_synced(state, self.dir / name)
        best = self._keep_best()
        metrics = self.out / schema.METRICS_FILE
        metrics_bytes = fsync_path(metrics) if metrics.exists() else 0
        manifest = ResumeManifest(
            step=step,
            steps_planned=self.cfg.train.max_steps,
            config_hash=self.cell_hash,
            state=name,
            state_bytes=size,
            state_sha256=digest,
            metrics_bytes=metrics_bytes,
            best=best,
            best_bytes=(self.dir / best).stat().st_size if best else None,
            written_at=now_iso(),
        )
        write_json(self.dir / schema.RESUME_MANIFEST, manifest)
        fsync_dir(self.dir)
        keep = {schema.RESUME_MANIFEST, name, best}
        for path in self.dir.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def _keep_best(self) -> str | None:
        """``best-<step>-<inode>.safetensors`` for the current ``ckpt/best.safetensors`` (None
        when there is none); linked once per best checkpoint."""
        source = self.out / schema.CKPT_DIR / BEST_FILE
        if not source.exists():
            return None
        from safetensors import safe_open

        with safe_open(str(source), "pt") as fh:
            best_step = "".join(filter(str.isdigit, (fh.metadata() or {}).get(cm.STEP_KEY, "")))
        # the step and the inode name one file: ckpt/ files are replaced by rename, never rewritten
        name = f"best-{best_step}-{source.stat().st_ino}.safetensors"
        if not (self.dir / name).exists():
            tmp = self.dir / f".{name}.tmp"
            tmp.unlink(missing_ok=True)
            link_or_copy(source, tmp)
            os.replace(tmp, self.dir / name)
        return name

    def after_ending(self, outcome: str, exc: BaseException | None) -> None:
        """Once the summary is written: remove the point unless a later attempt may continue
        from it (``KEEPS_RESUME_POINT``, or a full disk, which a rerun may find freed)."""
        disk_full = isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
        if outcome not in KEEPS_RESUME_POINT and not disk_full:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- helpers


def _metrics_prefix(path: Path, manifest: dict[str, Any]) -> str:
    """The lines metrics.jsonl had at the point's step (whole lines), or ResumeError."""
    n = manifest["metrics_bytes"]
    try:
        with open(path, "rb") as fh:
            kept = fh.read(n)
        text = kept.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResumeError(f"{path} is unreadable ({exc})") from None
    if len(kept) < n or (text and not text.endswith("\n")):
        raise ResumeError(f"{path} does not hold the lines it had at step {manifest['step']}")
    return text


def _check_fits(state: dict[str, Any], model: torch.nn.Module) -> None:
    """ResumeError unless the saved tensors are the model's trained ones, shape for shape, and
    the optimizer's groups hold as many parameters as ``make_optimizer`` gives them (a point
    written by other code is reported, never half loaded)."""
    frozen, own = _frozen(model), model.state_dict()
    saved = state.get("model")
    if not isinstance(saved, dict) or set(saved) != set(own) - frozen:
        raise ResumeError("its weights are not this model's (other code wrote it)")
    wrong = [k for k, v in saved.items() if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise ResumeError(
            f"its {wrong[0]} has shape {tuple(saved[wrong[0]].shape)}, "
            f"the model's {tuple(own[wrong[0]].shape)}"
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    sizes = [sum(p.ndim >= 2 for p in trainable), sum(p.ndim < 2 for p in trainable)]
    groups = (state.get("optimizer") or {}).get("param_groups") or []
    if [len(g.get("params", ())) for g in groups] != sizes:
        raise ResumeError("its optimizer state does not fit the model's trainable parameters")


def _frozen(model: torch.nn.Module) -> set[str]:
    """State-dict names of parameters training never changes (rebuilt, not saved)."""
    return {n for n, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}


def _trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    frozen = _frozen(model)
    return {k: v.detach() for k, v in model.state_dict().items() if k not in frozen}


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }


def _set_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    kind, keys, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _restore_result(res, data: dict[str, Any]) -> None:
    """Fill a fresh ``TrainResult`` from its ``dataclasses.asdict`` form."""
    for key, value in data.items():
        setattr(res, key, value)
    res.history = [TrainRecord(**r) for r in data["history"]]
    res.best = _eval_result(data["best"])
    res.last = _eval_result(data["last"])


def _eval_result(data: dict[str, Any] | None) -> EvalResult | None:
    if data is None:
        return None
    preds = [Prediction(**p) for p in data["predictions"]]
    return EvalResult(**{**data, "predictions": preds})
