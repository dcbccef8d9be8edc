"""One module per checkpoint format, each with ``NAME``, ``detect(path)``, ``describe(path)`` and
``load(path, ctx)``.

``describe`` returns header-level facts plus ``"format"``: the format name it reports for that path
(``harness`` reports ``state-dict`` or ``lora-file`` by the file's kind); ``inspect_checkpoint``
takes it from there. A format module imports shared modules only (``loaders.base``,
``loaders.apply``, ``loaders.lora_apply``, ``loaders.embedded``, ...), never a sibling format.

``FORMATS`` is the single ordered list detection walks: the most specific formats come first
(a DyLoRA-MoE directory also looks like a transformers directory; a LoRA file is also a state dict).
"""

from __future__ import annotations

from loaders.formats import (
    dylora_moe,
    harness,
    hf_full,
    lora_file,
    peft_adapter,
    state_dict,
    trainable_rows,
)

FORMATS = (trainable_rows, dylora_moe, peft_adapter, harness, lora_file, hf_full, state_dict)

__all__ = ["FORMATS"]
