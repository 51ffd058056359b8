"""Entry point of the ``recur`` console script."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

import toolkit
import toolkit.cli
from toolkit.errors import UserError


def _commands() -> dict[str, object]:
    found = {}
    for mod in pkgutil.iter_modules(toolkit.cli.__path__):
        if mod.name == "main":
            continue
        try:
            module = importlib.import_module(f"toolkit.cli.{mod.name}")
        except Exception as err:  # reported when the command is used, not by every other command
            print(f"recur: warning: command module {mod.name!r} failed to import: {err}", file=sys.stderr)
            continue
        if hasattr(module, "COMMAND"):
            found[module.COMMAND] = module
    return dict(sorted(found.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recur",
        description="recur: speech and language models built on long-memory recurrent networks.",
    )
    parser.add_argument("--version", action="version", version=f"recur {toolkit.__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("RECUR_THREADS", "0")) or None,
        help="CPU threads for PyTorch (default: PyTorch's choice, or $RECUR_THREADS); 1 is fastest for small "
        "models on a busy machine",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _commands().items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        try:
            module.configure(p)
        except Exception as err:  # one broken command must not take the others down
            p.set_defaults(_run=_unavailable(name, err))
            continue
        p.set_defaults(_run=module.run)
    return parser


def _unavailable(name: str, err: Exception):
    def run(args: argparse.Namespace) -> int:
        raise UserError(f"this command could not be set up: {type(err).__name__}: {err}")

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(args._run(args) or 0)
    except (UserError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
        if args.debug or os.environ.get("RECUR_DEBUG"):
            raise
        print(f"recur {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"recur {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
