"""``python -m loaders inspect PATH [--base-model P] [--json] [--load]``."""

from __future__ import annotations

import argparse
import json
import sys

from loaders.api import inspect_checkpoint, load_checkpoint
from loaders.errors import CheckpointError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m loaders", description="Inspect or load a checkpoint."
    )
    sub = p.add_subparsers(dest="command", required=True)
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
    """CLI entry point; exit 2 with one clear line on a checkpoint error."""
    args = _parser().parse_args(argv)
    try:
        if args.load or args.base_model:
            loaded = load_checkpoint(
                args.path,
                args.base_model,
                lora_alpha=args.lora_alpha,
                expert=args.expert,
                strict=args.strict,
                allow_remote_code=args.allow_remote_code,
            )
            print(loaded.report.to_json() if args.json else str(loaded.report))
        else:
            info = inspect_checkpoint(args.path)
            if args.json:
                print(json.dumps(info, indent=2, sort_keys=True, default=str))
            else:
                print(f"format:  {info['format']} ({info['reason']})\npath:    {info['path']}")
                for k, v in info["details"].items():
                    print(f"  {k}: {v}")
                for n in info["notes"]:
                    print(f"note:    {n}")
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
