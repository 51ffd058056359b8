"""``recur convert``: make a checkpoint written before models carried their tokenizer self-contained."""

from __future__ import annotations

import argparse

COMMAND = "convert"
HELP = "embed the tokenizer into older checkpoints, so the model works wherever it is copied"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", help="experiment folders (all their checkpoints) or .ckpt files")
    parser.add_argument(
        "--tokenizer",
        help="the tokenizer folder the model was trained with (default: the path the checkpoint names)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toolkit.api import convert

    for model in args.models:
        path = Path(model)
        files = sorted((path / "checkpoints").glob("*.ckpt")) if path.is_dir() else [path]
        for ckpt in files:
            print(f"recur convert: {convert(ckpt, args.tokenizer)}: self-contained")
    return 0
