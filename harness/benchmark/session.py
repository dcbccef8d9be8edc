"""One ``benchmark`` run: source -> data -> base (built, evaluated) -> trained (loaded onto that
base, evaluated) -> proof -> comparison -> results. Timed phase by phase."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from harness.benchmark import eval_models
from harness.benchmark.attention_mode import Attention, attention_for, prompt_format_for
from harness.benchmark.cache import ResultCache
from harness.benchmark.compare import compare_sides
from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.generation import GenerationSettings
from harness.benchmark.result_schema import (
    BaseSection,
    BenchmarkResults,
    DataSection,
    Metrics,
    SampleRow,
    Timings,
    TrainedSection,
    proof,
)
from harness.benchmark.samples import select
from harness.benchmark.settings import BenchmarkConfig
from harness.benchmark.sides import EvalModel, SideResult
from harness.benchmark.source import TrainedSource, resolve_source
from harness.benchmark.tasks import TASKS, infer_task, load_samples, task_spec
from harness.benchmark.terminal import Terminal
from harness.cell.device import torch_info
from harness.contracts.provenance import collect_provenance
from harness.models.hf import ModelLoadError
from harness.models.prefix_lm import PrefixLM
from loaders import inspect_checkpoint


def task_settings(task: str, given: GenerationSettings, max_new_set: bool) -> GenerationSettings:
    """The task's defaults (max new tokens, stop sequences) under what was given."""
    spec = task_spec(task)
    out = given if max_new_set else replace(given, max_new_tokens=spec.max_new_tokens)
    return replace(out, stop=spec.stop) if spec.stop and not out.stop else out


def _evaluate(
    task: str, model: EvalModel, samples: list[Any], cfg: BenchmarkConfig, path: str, ui: Terminal
) -> SideResult:
    spec = task_spec(task)
    model.cache, model.batch_size = ResultCache(cfg.cache_path), cfg.batch_size
    label = f"{model.label}: {task} on {len(samples)} {spec.unit}"
    with ui.progress(label, len(samples), spec.unit) as tick:
        return spec.evaluate(model, samples, cfg, path, tick)


def _scoring_path(task: str, *models: EvalModel) -> str:
    return task_spec(task).scoring_path(*models)


def _data(
    cfg: BenchmarkConfig, max_new_set: bool
) -> tuple[BenchmarkConfig, str, DataSection, list]:
    """The task (given or inferred), its settings, why this task, and the samples both see."""
    task, why = infer_task(cfg.data, cfg.task)
    cfg = replace(cfg, task=task, generation=task_settings(task, cfg.generation, max_new_set))
    all_samples = load_samples(task, cfg.data)
    samples, selection = select(all_samples, cfg.max_samples, cfg.sample_seed)
    data = DataSection(
        path=str(cfg.data) if cfg.data else task_spec(task).default_data,
        selection=selection,
        n_available=len(all_samples),
        n=len(samples),
        max_samples=cfg.max_samples,
        sample_seed=cfg.sample_seed,
    )
    return cfg, why, data, samples


def _apply_attention(model: EvalModel, attention: Attention | None) -> bool:
    """Set the recorded attention mode on a harness PrefixLM (other models have their own)."""
    if attention is None or not isinstance(model.module, PrefixLM):
        return False
    try:
        model.module.set_attention(attention.mode, attention.impl)
    except (ValueError, ModelLoadError) as e:  # hf-vlm refuses e.g. flash over a native mask
        raise BenchmarkInputError(f"attention {attention.mode}:{attention.impl}: {e}") from None
    return True


def _apply_prompt_format(model: EvalModel, prompt_format: str | None) -> None:
    """Prompt a harness PrefixLM as its cell was trained (``data.prompt_format``)."""
    if prompt_format is None or not isinstance(model.module, PrefixLM):
        return
    try:
        model.module.set_prompt_format(prompt_format)
    except (ValueError, ModelLoadError) as e:
        raise BenchmarkInputError(f"data.prompt_format {prompt_format}: {e}") from None


def _base_side(
    cfg: BenchmarkConfig,
    spec: str,
    info: dict,
    device: torch.device,
    samples: list,
    ui: Terminal,
    attention: Attention | None,
    prompt_format: str | None = None,
) -> tuple[EvalModel, SideResult, str, float]:
    """Build the base, evaluate it: (model, result, QA path, load seconds)."""
    t = time.perf_counter()
    with ui.spinner(f"loading the base model {spec}"):
        module = eval_models.build_base(
            spec, Path(info["path"]), device, cfg.dtype, cfg.allow_remote_code
        )
    base = eval_models.eval_model(
        "base", module, device, _candidates(cfg, None, spec), cfg.allow_remote_code
    )
    _apply_attention(base, attention)
    _apply_prompt_format(base, prompt_format)
    load_s = time.perf_counter() - t
    path = _scoring_path(str(cfg.task), base)
    return base, _evaluate(str(cfg.task), base, samples, cfg, path, ui), path, load_s


def _trained_model(
    cfg: BenchmarkConfig,
    source: TrainedSource,
    info: dict,
    target: Any,
    base_spec: str | None,
    device: torch.device,
    ui: Terminal,
) -> tuple[EvalModel, Any]:
    """``load_checkpoint`` onto ``target`` (the evaluated base module, or a spec): (model, loaded)."""
    options = {
        "lora_alpha": cfg.lora_alpha,
        "dtype": cfg.dtype,
        "allow_remote_code": cfg.allow_remote_code,
    }
    with ui.spinner(f"loading {source.path} ({info['format']}: {info['reason']})"):
        loaded = eval_models.load_trained(source.path, target, device, options)
    candidates = _candidates(cfg, source, base_spec)
    return eval_models.eval_model(
        "trained", loaded.model, device, candidates, cfg.allow_remote_code
    ), loaded


def run_benchmark(
    cfg: BenchmarkConfig, ui: Terminal, command: list[str], max_new_set: bool = False
) -> BenchmarkResults:
    """Run everything ``cfg`` asks for and return the results (files are written by the caller)."""
    start = time.perf_counter()
    device = eval_models.pick_device(cfg.device)  # an unusable --device fails before any work
    cfg, why, data, samples = _data(cfg, max_new_set)
    task = str(cfg.task)
    ui.say(f"task {task} ({why}); {data.selection}")
    with ui.spinner("getting the trained model"):
        source = resolve_source(cfg)
    if source.fetch_s:
        ui.say(f"trained model: {source.reference} -> {source.path} ({source.origin})")
    info = inspect_checkpoint(source.path)
    attention = attention_for(cfg.attention, source.metadata, Path(info["path"]))
    prompt_format = prompt_format_for(Path(info["path"]))
    base = eval_models.choose_base(cfg.base_model, info, source.metadata)
    timings: dict[str, float] = {"fetch_s": source.fetch_s, "load_base_s": 0.0}
    base_side, path, target, base_tokenizer, base_cache = None, "", base.spec, None, None
    if cfg.compare and base.spec is not None:
        ui.say(f"base model: {base.spec} ({base.origin})")
        base_model, base_side, path, timings["load_base_s"] = _base_side(
            cfg, base.spec, info, device, samples, ui, attention, prompt_format
        )
        target, base_tokenizer = base_model.module, base_model.tokenizer_source
        base_cache = base_model.cache.summary()
        del base_model  # the loader gets the module; nothing else keeps it (hf-full replaces it)
    t = time.perf_counter()
    trained, loaded = _trained_model(cfg, source, info, target, base.spec, device, ui)
    del target
    applied = _apply_attention(trained, attention)
    _apply_prompt_format(trained, prompt_format)
    timings["load_trained_s"] = time.perf_counter() - t
    if base_side is not None and _scoring_path(task, trained) != path:
        raise BenchmarkInputError(
            "the base is a harness vision model but the trained model is not: they cannot be "
            "scored the same way; check --base_model"
        )
    trained_side = _evaluate(task, trained, samples, cfg, path or _scoring_path(task, trained), ui)
    caches = {"path": str(cfg.cache_path) if cfg.cache_path else None}
    caches |= {"trained": trained.cache.summary()}
    comparison = None
    if base_side is not None:
        comparison = compare_sides(
            task, base_side.samples, trained_side.samples, cfg.generation.samples_per_task
        )
    sides = [s for s in (base_side, trained_side) if s is not None]
    timings["load_s"] = timings["load_base_s"] + timings["load_trained_s"]
    timings["probe_s"] = sum(s.probe_s for s in sides)
    timings["evaluation_s"] = sum(s.elapsed_s for s in sides)
    timings["total_s"] = time.perf_counter() - start  # before the report; updated by the writer
    return BenchmarkResults(
        command=command,
        task=task,
        task_reason=why,
        data=data,
        generation=cfg.generation.to_dict() if task_spec(task).generates else {},
        trained=_trained_info(source, loaded.report.path, trained),
        base=BaseSection(
            spec=base.spec,
            origin=base.origin,
            notes=base.notes,
            evaluated=base_side is not None,
            tokenizer=base_tokenizer,
            reason_not_compared=None if base_side is not None else _why_not(cfg, base.spec),
        ),
        loader=loaded.report.to_dict(),
        proof=proof(loaded.report, base_side, trained_side, task, samples),
        metrics=Metrics(base_side.metrics if base_side else None, trained_side.metrics),
        comparison=comparison,
        samples=_sample_rows(base_side, trained_side),
        device=str(device),
        dtype=loaded.report.dtype,
        options={
            "allow_unchanged": cfg.allow_unchanged,
            "lora_alpha": cfg.lora_alpha,
            **_task_options(cfg, task),
            "attention": {**asdict(attention), "applied": applied} if attention else None,
            "prompt_format": prompt_format,
        },
        timings=Timings(**timings),
        provenance=collect_provenance() | torch_info(),
        warnings=[*loaded.report.warnings, *_metadata_disagrees(source, loaded.format)],
        execution={
            "batch_size": cfg.batch_size,
            "cache": caches | ({"base": base_cache} if base_cache else {}),
        },
    )


def _task_options(cfg: BenchmarkConfig, task: str) -> dict[str, Any]:
    """Every task's recorded options (None where another task's), this task's values."""
    out: dict[str, Any] = {key: None for spec in TASKS.values() for key, _ in spec.options}
    return out | {key: getattr(cfg, name) for key, name in task_spec(task).options}


def _candidates(cfg: BenchmarkConfig, source: TrainedSource | None, base: str | None) -> list[str]:
    """Tokenizer folders to try: --tokenizer, then the trained model's folders, then the base's."""
    first = [cfg.tokenizer] if cfg.tokenizer else []
    trained = [source.path] if source is not None else []
    return first + eval_models.tokenizer_candidates(*trained, base)


def _metadata_disagrees(source: TrainedSource, detected: str) -> list[str]:
    """The artifact's metadata names another format than the one detected in its files."""
    from loaders.formats.harness import KINDS  # harness-full / harness-lora: the file's own kinds

    recorded = source.metadata.get("format")
    if isinstance(recorded, str) and recorded and KINDS.get(recorded, recorded) != detected:
        return [f"the artifact metadata says format {recorded!r}; its files are {detected!r}"]
    return []


def _why_not(cfg: BenchmarkConfig, spec: str | None) -> str:
    if spec is None:
        return (
            "no base model known (none given, none recorded in the checkpoint or the artifact "
            "metadata): pass --base_model to compare"
        )
    return "--no_compare"


def _trained_info(source: TrainedSource, loaded_path: str, model: EvalModel) -> TrainedSection:
    return TrainedSection(
        source=str(source.path),
        origin=source.origin,
        reference=source.reference,
        metadata=source.metadata,
        tried=source.tried,
        loaded_path=loaded_path,
        tokenizer=model.tokenizer_source,
        parameters=sum(p.numel() for p in model.module.parameters()),
    )


def _sample_rows(base: SideResult | None, trained: SideResult) -> list[SampleRow]:
    return [
        SampleRow(i, base.samples[i] if base else None, row) for i, row in trained.samples.items()
    ]
