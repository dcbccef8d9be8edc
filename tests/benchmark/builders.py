"""Tiny models, checkpoints of every loader format, and data, all made in the test.

The checkpoint writers are the loader tests' own (``tests/loaders``): imported from there so that
``benchmark`` is tested on exactly the files the loaders are tested on. The base is the loader
tests' tiny Llama (vocab 64, hidden 16) saved with a 64-token character tokenizer, so the
trainable-rows token space of those tests fits it unchanged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

LOADER_TESTS = Path(__file__).resolve().parents[1] / "loaders"
if str(LOADER_TESTS) not in sys.path:  # the loader tests import their helpers by bare name
    sys.path.insert(0, str(LOADER_TESTS))

from loader_fixtures import HIDDEN, VOCAB, tiny_model  # noqa: E402
from test_loader_dylora import ALPHA as DY_ALPHA  # noqa: E402
from test_loader_dylora import E as DY_EXPERTS  # noqa: E402
from test_loader_dylora import R as DY_RANK  # noqa: E402
from test_loader_dylora import _single as write_dylora_single  # noqa: E402
from test_loader_lora_file import ALPHA as SEED000_ALPHA  # noqa: E402
from test_loader_lora_file import region_tensors, seed000_pairs  # noqa: E402
from test_loader_standard import _peft_adapter as write_peft_adapter  # noqa: E402
from test_loader_trainable_rows import rows, tiny_space, write_run  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHARS = list("\n :?.,()=+-_'\"#[]") + list("0123456789") + list("abcdefghijklmnopqrstuvwxyz")
CHARS += list("QADERTF")


def char_tokenizer():
    """A 64-token character tokenizer (the tiny Llama's vocabulary size), built in code."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + CHARS)}
    assert len(vocab) == VOCAB
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def save_base(d: Path) -> Path:
    """The tiny Llama (seed 0) and the character tokenizer in one folder."""
    model = tiny_model(0, bos_token_id=1, eos_token_id=2, max_position_embeddings=256)
    model.save_pretrained(d)
    char_tokenizer().save_pretrained(d)
    return d


def qa_jsonl(path: Path, n: int = 6) -> Path:
    """Text QA in the seed's JSONL layout (questions/answers from the tokenizer's characters)."""
    rows = [{"id": f"q{i}", "question": q, "answer": a} for i, (q, a) in enumerate(qa_pairs(n))]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def text_file(path: Path) -> Path:
    """A .txt file of three paragraphs for perplexity."""
    path.write_text("the cat sat.\nit was red.\n\na dog ran far away.\n\nQED: 1+1=2\n")
    return path


def code_problems(path: Path) -> Path:
    """Two problems in HumanEval's layout (``train_tiny`` learns their solutions)."""
    rows = [
        {
            "task_id": f"t/{i}",
            "prompt": prompt,
            "canonical_solution": solution,
            "test": f"def check(c):\n    assert c(1) == {1 + i}\n",
            "entry_point": f"f{i}",
        }
        for i, (prompt, solution) in enumerate(code_pairs())
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def qa_pairs(n: int = 6) -> list[tuple[str, str]]:
    return [(f"{i}+{i}", str(2 * i)) for i in range(n)]


def code_pairs(n: int = 2) -> list[tuple[str, str]]:
    """(prompt, canonical solution) of ``code_problems``."""
    return [(f"def f{i}(x):\n", f"    return x + {i}\n") for i in range(n)]


def train_tiny(base_dir: Path, out: Path, steps: int = 300) -> Path:
    """Fine-tune the base on the QA answers and code solutions (full weights, seeded, ~3 s on
    one core) and save it as a transformers folder: a model that really answers them."""
    from transformers import LlamaForCausalLM

    from harness.models.prefix_lm import PROMPT_TEMPLATE

    tok = char_tokenizer()
    texts = [PROMPT_TEMPLATE.format(question=q) + a for q, a in qa_pairs()]
    texts += [p + c for p, c in code_pairs()]
    seqs = [
        [tok.bos_token_id, *tok.encode(t, add_special_tokens=False), tok.eos_token_id]
        for t in texts
    ]
    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = labels[i, : len(s)] = torch.tensor(s)
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(base_dir).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().save_pretrained(out)
    return out


def dylora_trained(base_dir: Path):
    """PEFT experts + router gate as seed 002's train.py built them (the loader tests' recipe)."""
    from peft import LoraConfig, get_peft_model
    from torch import nn
    from transformers import LlamaForCausalLM

    torch.manual_seed(11)
    base = LlamaForCausalLM.from_pretrained(base_dir)
    cfg = LoraConfig(
        r=DY_RANK,
        lora_alpha=DY_ALPHA,
        lora_dropout=0.05,
        init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    )
    peft_model = get_peft_model(base, cfg, adapter_name="expert_0")
    peft_model.add_adapter("expert_1", cfg)
    gate = nn.Linear(HIDDEN, DY_EXPERTS)
    with torch.no_grad():
        gate.weight.mul_(20)
    return peft_model.eval(), gate


def write_seed000_file(path: Path, base_dir: Path) -> Path:
    """Seed 000's single file: LoRA pairs ``A [in, r]`` / ``B [r, out]`` + a region head."""
    from safetensors.torch import save_file
    from transformers import LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(base_dir)
    save_file({**seed000_pairs(base), **region_tensors()}, path)
    return path


def write_trainable_rows(root: Path) -> Path:
    """Seed 003's run folder: token space + ``checkpoint_N/trainable_rows.pt``."""
    return write_run(root, tiny_space(), rows())


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """``python -m harness.benchmark ARGS`` as a real subprocess."""
    import os

    # one thread, as in-process tests: two on a busy 2-core machine are many times slower
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness.benchmark", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
    )


__all__ = ["SEED000_ALPHA", "write_dylora_single", "write_peft_adapter"]
