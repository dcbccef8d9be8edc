"""Pure parts of `benchmark`: task inference, sample selection, the paired statistics, which base,
and the report (deterministic, regenerable from the JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import binomtest

from harness.benchmark.compare import compare_sides, differing
from harness.benchmark.errors import BenchmarkInputError
from harness.benchmark.eval_models import choose_base
from harness.benchmark.samples import select, text_samples
from harness.benchmark.settings import BenchmarkConfig, GenerationSettings
from harness.benchmark.tasks import infer_task


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_task_inference(tmp_path, data_dir):
    assert infer_task(data_dir / "qa.jsonl", None)[0] == "qa"
    assert infer_task(data_dir / "text.txt", None)[0] == "perplexity"
    assert infer_task(data_dir / "code.jsonl", None)[0] == "humaneval"
    assert infer_task(_write(tmp_path / "t.jsonl", [{"text": "x"}]), None)[0] == "perplexity"
    alias = _write(tmp_path / "a.jsonl", [{"prompt": "q", "response": "a"}])
    assert infer_task(alias, None)[0] == "qa"
    assert infer_task(None, "humaneval") == ("humaneval", "--task")
    with pytest.raises(BenchmarkInputError, match="no --data"):
        infer_task(None, None)
    with pytest.raises(BenchmarkInputError, match=r"keys \['foo'\]"):
        infer_task(_write(tmp_path / "f.jsonl", [{"foo": 1}]), None)


def test_text_samples_are_paragraphs(data_dir):
    samples = text_samples(data_dir / "text.txt")
    assert [s.id for s in samples] == ["text:1", "text:2", "text:3"]
    assert samples[0].text == "the cat sat.\nit was red."


def test_selection_first_n_or_seeded_and_stated():
    items = list(range(10))
    assert select(items, None, None) == (items, "all 10 samples")
    assert select(items, 3, None) == ([0, 1, 2], "the first 3 of 10 samples (file order)")
    picked, how = select(items, 4, 5)
    assert picked == sorted(picked) and len(set(picked)) == 4 and picked != [0, 1, 2, 3]
    assert select(items, 4, 5)[0] == picked and "random.Random(5)" in how


def _rows(values, key):
    return {f"s{i}": {key: v} for i, v in enumerate(values)}


def test_binary_comparison_is_mcnemar_exact():
    base = _rows([1, 0, 0, 0, 1, 0, 0, 0, 0, 1], "correct")
    trained = _rows([1, 1, 1, 1, 0, 1, 1, 1, 0, 1], "correct")
    cmp = compare_sides("qa", base, trained)
    assert (cmp["trained_only"], cmp["base_only"], cmp["n"]) == (6, 1, 10)
    assert cmp["diff"] == pytest.approx(0.5)
    assert cmp["p_value"] == pytest.approx(binomtest(1, 7, 0.5).pvalue)
    assert cmp["ci95"][0] < 0.5 < cmp["ci95"][1]
    assert differing("qa", base, trained, "correct") == ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]


def test_continuous_comparison_is_a_sign_test_oriented_by_the_metric():
    base = _rows([2.0, 2.0, 2.0, 2.0, 2.0, 2.0], "mean_nll")
    trained = _rows([1.0, 1.5, 1.9, 2.0, 1.0, 2.5], "mean_nll")
    cmp = compare_sides("perplexity", base, trained)
    assert (cmp["trained_better"], cmp["base_better"], cmp["ties"]) == (4, 1, 1)
    assert cmp["p_value"] == pytest.approx(binomtest(1, 5, 0.5).pvalue)
    assert cmp["diff"] == pytest.approx(-0.35) and cmp["lower_is_better"]
    code = compare_sides(
        "humaneval", _rows([0.5] * 3, "pass_fraction"), _rows([1.0] * 3, "pass_fraction"), 2
    )
    assert code["verdict"] == "no detectable difference" and code["trained_better"] == 3
    with pytest.raises(ValueError, match="same samples"):
        compare_sides("qa", _rows([1], "correct"), _rows([1, 0], "correct"))


def test_base_precedence_flag_then_checkpoint_then_artifact():
    info = {"details": {"base_model_name_or_path": "/ckpt/base"}, "path": ""}
    meta = {"base_model": "/meta/base"}
    flag = choose_base("/flag/base", info, meta)
    assert (flag.spec, flag.origin) == ("/flag/base", "--base_model") and len(flag.notes) == 2
    recorded = choose_base(None, info, meta)
    assert (recorded.spec, recorded.origin) == ("/ckpt/base", "recorded in the checkpoint")
    assert "artifact metadata base '/meta/base'" in recorded.notes[0]
    art = choose_base(None, {"details": {}, "path": ""}, meta)
    assert (art.spec, art.origin) == ("/meta/base", "W&B artifact metadata")
    assert choose_base(None, {"details": {}, "path": ""}, {}).spec is None


def test_config_checks():
    with pytest.raises(BenchmarkInputError, match="exactly one model"):
        BenchmarkConfig()
    with pytest.raises(BenchmarkInputError, match="--sample_seed needs --max_samples"):
        BenchmarkConfig(trained_model="x", sample_seed=1)
    with pytest.raises(BenchmarkInputError, match="--top_p"):
        GenerationSettings(top_p=0)
    s = GenerationSettings(temperature=0.2, top_p=0.95, seed=3, samples_per_task=5)
    assert s.item_seed(2, 1) == 3 + 2 * 1_000_003 + 1 and not s.greedy
    assert "temperature 0.2, top_p 0.95, seed 3" in s.describe()


def test_report_is_deterministic_and_regenerable_from_the_json(tmp_path, base_dir, data_dir):
    from harness.benchmark.cli import main
    from harness.benchmark.render import render

    out = tmp_path / "r.md"
    args = ["--trained_model", str(base_dir), "--base_model", str(base_dir), "--quiet"]
    rc = main([*args, "--data", str(data_dir / "text.txt"), "--output", str(out)])
    assert rc == 3  # the model IS its base: flagged
    res = json.loads(out.with_suffix(".json").read_text())
    assert render(res) == out.read_text() == render(json.loads(json.dumps(res)))
    assert out.read_text().index("UNCHANGED") < out.read_text().index("## Result")


def test_artifact_metadata_format_is_checked_against_the_files():
    from harness.benchmark.session import _metadata_disagrees
    from harness.benchmark.source import TrainedSource

    def src(fmt):
        return TrainedSource(Path("."), "W&B artifact", metadata={"format": fmt})

    assert _metadata_disagrees(src("dylora-moe"), "dylora-moe") == []
    assert _metadata_disagrees(src("harness-lora"), "lora-file") == []
    assert "'hf-full'" in _metadata_disagrees(src("hf-full"), "peft-adapter")[0]


def test_every_flag_is_declared_once_on_its_field_and_fills_it():
    from dataclasses import fields

    from harness.benchmark.cli import build_parser, config_from_args
    from harness.benchmark.flags import FLAG

    parser = build_parser()
    on_parser = {a.dest for a in parser._actions} - {"help"}
    declared = {
        f.name
        for cls in (BenchmarkConfig, GenerationSettings)
        for f in fields(cls)
        if FLAG in f.metadata
    }
    assert on_parser == declared
    argv = ["--trained-model", "m", "--no_compare", "--max-samples", "3", "--sample_seed", "5"]
    argv += ["--temperature", "0.5", "--max_new_tokens", "7", "--dtype", "float16"]
    argv += ["--artifacts-dir", "arts", "--workers", "2", "--top-p", "0.9"]
    cfg = config_from_args(parser.parse_args(argv))
    assert (cfg.trained_model, cfg.compare, cfg.max_samples, cfg.sample_seed) == ("m", False, 3, 5)
    gen = cfg.generation
    assert (gen.temperature, gen.max_new_tokens, gen.top_p, gen.seed) == (0.5, 7, 0.9, 0)
    assert (cfg.dtype, cfg.artifacts_dir, cfg.workers) == ("float16", Path("arts"), 2)
    assert cfg.device == "auto" and cfg.output == Path("benchmark_report.md") and not cfg.quiet
    assert config_from_args(parser.parse_args(["--wandb_artifact", "e/p/n:v1"])).compare is True


def test_tasks_come_from_one_registry(monkeypatch):
    from dataclasses import replace

    from harness.benchmark.cli import build_parser, config_from_args
    from harness.benchmark.session import task_settings
    from harness.benchmark.tasks import TASKS

    choices = next(a.choices for a in build_parser()._actions if a.dest == "task")
    assert tuple(choices) == tuple(TASKS) == ("qa", "perplexity", "humaneval")
    for name, spec in TASKS.items():
        settings = task_settings(name, GenerationSettings(), max_new_set=False)
        assert (settings.max_new_tokens, settings.stop) == (spec.max_new_tokens, spec.stop)
    assert (
        task_settings("humaneval", GenerationSettings(max_new_tokens=5), True).max_new_tokens == 5
    )
    assert "default: qa 20, humaneval 256" in build_parser().format_help()
    # a task registered in TASKS is a --task choice, a valid config, and the data it claims
    monkeypatch.setitem(TASKS, "echo", replace(TASKS["qa"], name="echo", max_new_tokens=3))
    args = build_parser().parse_args(["--trained_model", "m", "--task", "echo"])
    assert config_from_args(args).task == "echo"
    assert task_settings("echo", GenerationSettings(), False).max_new_tokens == 3
    assert "echo 3" in build_parser().format_help()


def test_results_are_read_back_validated_and_the_report_regenerates(tmp_path, base_dir, data_dir):
    from harness.benchmark.cli import main
    from harness.benchmark.render import render
    from harness.benchmark.result_schema import ResultsError, read_results

    out = tmp_path / "r.md"
    args = ["--trained_model", str(base_dir), "--base_model", str(base_dir), "--quiet"]
    args += ["--data", str(data_dir / "code.jsonl"), "--max_new_tokens", "2", "--lora_alpha", "2"]
    assert main([*args, "--output", str(out)]) == 3  # the model IS its base
    res = read_results(out.with_suffix(".json"))
    assert res["options"]["lora_alpha"] == 2 and res["options"]["code_timeout_s"] == 10
    assert render(res) == out.read_text()  # options in one order, in the run and from the file
    bad = tmp_path / "bad.json"
    for change, says in [
        (lambda r: r["data"].update(n="two"), "`data.n` should be int, got 'two'"),
        (lambda r: r["timings"].pop("total_s"), "`timings.total_s` is missing"),
        (lambda r: r.pop("proof"), "`proof` is missing"),
        (lambda r: r["samples"][0].update(trained=[]), "`samples[0].trained` should be dict"),
        (lambda r: r.update(schema="code_score/1"), "`schema` is 'code_score/1'"),
    ]:
        broken = json.loads(json.dumps(res))
        change(broken)
        bad.write_text(json.dumps(broken))
        with pytest.raises(ResultsError, match="not benchmark results") as info:
            read_results(bad)
        assert str(info.value).startswith(f"{bad}: ") and says in str(info.value), info.value
    bad.write_text("{")
    with pytest.raises(ResultsError, match="unreadable"):
        read_results(bad)
