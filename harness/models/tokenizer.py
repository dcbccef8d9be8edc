"""A character-level tokenizer built in code (no download), as a real transformers tokenizer."""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK, IMAGE = "<pad>", "<bos>", "<eos>", "<unk>", "<image>"
SPECIALS = [PAD, BOS, EOS, UNK, IMAGE]
CHARS = [c for c in string.printable if c not in "\x0b\x0c\r"]
# Whole-word tokens for the prompt template and the default captcha question, so the text part
# of a sequence is ~17 tokens instead of ~60 characters; everything else falls back to characters.
WORDS = [
    "Question:",
    "Answer:",
    " What",
    " is",
    " the",
    " text",
    " in",
    " this",
    " captcha",
    " image",
]


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """Printable ASCII, one token per character, a few whole words, and pad/bos/eos/unk/<image>."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[IMAGE],
    )
    tok.add_tokens(WORDS)
    return tok
