"""`benchmark` on a local checkpoint: wall time split into load, probe, evaluation and report.

Run: ``.venv/bin/pytest tests/benchmarks/test_benchmark_cli_bench.py -m slow --benchmark-only -q -s``
(part of ``make bench``). Each scenario runs the real CLI once in a fresh process, in comparison
mode (the base is built and evaluated, then the checkpoint is loaded onto it), and prints the
phases the command itself records in its JSON (``timings``) next to the process's wall time
(which adds the Python, torch and transformers imports):

- ``load``: building the base + ``load_checkpoint`` (its own 4-token before/after probe included);
- ``probe``: the data probe, one forward pass per model on the first sample's prompt;
- ``evaluation``: both models over every sample (the data probe excluded);
- ``report``: rendering and writing the markdown report and the JSON results.

Scenarios: the harness's own ``tiny-vlm`` (default size) full checkpoint on 200 captchas (vision
QA, batched greedy decoding through ``harness.cell.evaluate``), and a 3.2M-parameter Llama with a PEFT
LoRA adapter on 100 paragraphs (perplexity, 256 tokens each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
PHASES = ("load_s", "probe_s", "evaluation_s", "report_s", "total_s")


def _tiny_vlm_checkpoint(d: Path) -> list[str]:
    from harness.cell.checkpoints import save_checkpoint
    from harness.contracts.config import parse_cell_config
    from harness.data.captcha import generate_split
    from harness.models import build_model

    cfg = parse_cell_config({"data": {"cache_dir": str(d / "cache")}})
    torch.manual_seed(cfg.seed)
    model, _ = build_model(cfg.model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    f = save_checkpoint(model, cfg, d / "best.safetensors", step=1, metric=0.0)
    data = generate_split(d / "captcha", "test", 200)
    return ["--trained_model", str(f), "--data", str(data)]


def _llama_peft_checkpoint(d: Path) -> list[str]:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(d / "base")
    tok.save_pretrained(d / "base")
    base = LlamaForCausalLM.from_pretrained(d / "base")
    lora = LoraConfig(r=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(d / "adapter")
    cfg_path = d / "adapter" / "adapter_config.json"
    cfg_path.write_text(
        json.dumps({**json.loads(cfg_path.read_text()), "base_model_name_or_path": str(d / "base")})
    )
    text = "\n\n".join(
        f"paragraph {i}: " + "the quick brown fox jumps over the lazy dog. " * 6 for i in range(100)
    )
    (d / "text.txt").write_text(text)
    return [
        "--trained_model",
        str(d / "adapter"),
        "--data",
        str(d / "text.txt"),
        "--max_length",
        "256",
    ]


SCENARIOS = {
    "tiny-vlm full, 200 captchas (vision QA)": _tiny_vlm_checkpoint,
    "Llama (3.2M) + PEFT LoRA, 100 paragraphs (perplexity)": _llama_peft_checkpoint,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_bench_benchmark_phases(benchmark, tmp_path, name):
    args = SCENARIOS[name](tmp_path)
    out = tmp_path / "report.md"
    cmd = [sys.executable, "-m", "harness.benchmark", *args, "--output", str(out), "--quiet"]
    cmd.append("--no_cache")  # the phases as computed, not as read from an earlier run's cache
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run() -> float:
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return time.perf_counter() - start

    wall = benchmark.pedantic(run, rounds=1, iterations=1)
    res = json.loads(out.with_suffix(".json").read_text())
    t = res["timings"]
    params = res["trained"]["parameters"]
    lines = [
        f"\n{name}: {res['data']['n']} samples, {res['loader']['format']}, {params:,} parameters, {res['device']}"
    ]
    lines += [f"  {k.removesuffix('_s'):<11} {t[k]:8.2f} s" for k in PHASES]
    lines.append(f"  {'process':<11} {wall:8.2f} s (imports included)")
    print("\n".join(lines))
    benchmark.extra_info.update({k: round(t[k], 3) for k in PHASES} | {"process_s": round(wall, 3)})
    assert res["proof"]["unchanged"] is False
