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


def build_char_tokenizer(
    specials: list[str] | tuple[str, ...] = (), named: dict[str, str] | None = None
) -> PreTrainedTokenizerFast:
    """Printable ASCII, one token per character, a few whole words, and pad/bos/eos/unk/<image>.

    ``specials``: more special tokens (a VLM family's image tokens), appended after the words;
    ``named``: special tokens that the family's processor reads as tokenizer attributes
    (``{"boi_token": "<start_of_image>"}``)."""
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
        **({"extra_special_tokens": {"image_token": IMAGE, **named}} if named else {}),
    )
    tok.add_tokens(WORDS)
    extra = [t for t in dict.fromkeys([*specials, *(named or {}).values()]) if t != IMAGE]
    if extra:
        tok.add_tokens(extra, special_tokens=True)
    return tok
