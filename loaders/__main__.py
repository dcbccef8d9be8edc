"""``python -m loaders inspect PATH [--base-model P] [--json] [--load]``."""

from __future__ import annotations

import argparse
import json
import sys

from harness.contracts.errors import Parser, run_command
from loaders.api import inspect_checkpoint, load_checkpoint
from loaders.errors import CheckpointError


def _parser() -> Parser:
    p = Parser(prog="python -m loaders", description="Inspect or load a checkpoint.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    ins = sub.add_parser(
        "inspect", help="detect the format and describe it (no model is run unless --load)"
    )
    ins.add_argument("path")
    ins.add_argument("--base-model", help="local path or hub id of the base model")
    ins.add_argument("--lora-alpha", type=float, help="alpha for LoRA files that do not record it")
    ins.add_argument("--expert", type=int, help="DyLoRA-MoE: pin one expert")
    ins.add_argument("--allow-remote-code", action="store_true")
    ins.add_argument("--strict", action="store_true", help="fail on any missing trained key")
    ins.add_argument("--load", action="store_true", help="load fully and run the logit check")
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: a checkpoint error is one clear line and exit 2 (``harness.contracts.errors``)."""
    args = _parser().parse_args(argv)
    return run_command(lambda: _main(args), CheckpointError)


def _main(args: argparse.Namespace) -> int:
    if args.load or args.base_model:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the load report below says what transformers would
        hf_logging.disable_progress_bar()
        loaded = load_checkpoint(
            args.path,
            args.base_model,
            lora_alpha=args.lora_alpha,
            expert=args.expert,
            strict=args.strict,
            allow_remote_code=args.allow_remote_code,
        )
        print(loaded.report.to_json() if args.json else str(loaded.report))
        return 0
    info = inspect_checkpoint(args.path)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True, default=str))
        return 0
    print(f"format:  {info['format']} ({info['reason']})\npath:    {info['path']}")
    for k, v in info["details"].items():
        print(f"  {k}: {v}")
    for n in info["notes"]:
        print(f"note:    {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
