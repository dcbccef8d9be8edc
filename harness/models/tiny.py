"""Write a tiny random-init model folder of a VLM family, offline.

``python -m harness.models.tiny --family qwen2_vl --out models/tiny-qwen2-vl`` saves the family's
real config, model and processor classes (tiny sizes, fixed seed) and a tokenizer made in code
with the family's special tokens, so that ``model.name: hf-vlm`` runs without a download.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.models.families import FAMILIES, family_named


def write_tiny(family: str, out: str | Path) -> Path:
    """Save the tiny model of ``family`` in ``out`` (created); returns the folder."""
    path = Path(out)
    family_named(family).write_tiny(path)
    return path


def main(argv: list[str] | None = None) -> int:
    names = [f.name for f in FAMILIES]
    parser = argparse.ArgumentParser(prog="python -m harness.models.tiny", description=__doc__)
    parser.add_argument("--family", required=True, choices=names)
    parser.add_argument("--out", required=True, help="folder to write (created)")
    args = parser.parse_args(argv)
    try:
        path = write_tiny(args.family, args.out)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote a tiny {args.family} model to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
