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
    rows = [{"id": f"q{i}", "question": f"{i}+{i}", "answer": str(2 * i)} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def text_file(path: Path) -> Path:
    """A .txt file of three paragraphs for perplexity."""
    path.write_text("the cat sat.\nit was red.\n\na dog ran far away.\n\nQED: 1+1=2\n")
    return path


def code_problems(path: Path) -> Path:
    """Two problems in HumanEval's layout (one the model may pass by chance: none)."""
    rows = [
        {
            "task_id": f"t/{i}",
            "prompt": f"def f{i}(x):\n",
            "canonical_solution": f"    return x + {i}\n",
            "test": f"def check(c):\n    assert c(1) == {1 + i}\n",
            "entry_point": f"f{i}",
        }
        for i in range(2)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


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

    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "harness.benchmark", *args],
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
    )


__all__ = ["SEED000_ALPHA", "write_dylora_single", "write_peft_adapter"]
