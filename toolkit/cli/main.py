"""Entry point of the ``recur`` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import traceback
import warnings
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
        except Exception as err:  # one broken command must not take the others down; using it shows why
            found[mod.name] = _Broken(mod.name, err)
            continue
        if hasattr(module, "COMMAND"):
            found[module.COMMAND] = module
    return dict(sorted(found.items()))


class _Broken:
    """A command whose module failed to import: listed in ``--help``; running it re-raises the error,
    traceback included (a broken install or a bug, not bad input)."""

    def __init__(self, name: str, err: Exception):
        self.HELP = f"(unavailable: {type(err).__name__} on import; run it for the traceback)"
        self.err = err

    def configure(self, parser: argparse.ArgumentParser) -> None:
        def accept_any_words(args=None, namespace=None):  # whatever was typed, running it shows the error
            ns = namespace or argparse.Namespace()
            for key, value in parser._defaults.items():
                setattr(ns, key, value)
            return ns, []

        parser.parse_known_args = accept_any_words

    def run(self, args: argparse.Namespace) -> int:
        raise self.err


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, ``(default: X)``, unless the text already says it
    (an option whose default is worked out at run time says ``(default: what it is)`` itself)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "(default" in text or default is None or default is False or default in ("", [], argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):  # a required positional
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """``recur``'s parsers: help with defaults (:class:`HelpFormatter`); a command's own sub-commands
    (``recur lm eval``) are made by this class too, so they format alike."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


# warnings attributed to these packages are the toolkit's own
OURS = r"(toolkit|data_prep)(\.|$)"
# Lightning's advertisements, logged at every `recur fit` ("💡 Tip: ... try installing litlogger")
TIPS = ("💡 Tip", "Tip: For seamless")


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().lstrip().startswith(TIPS)


def quiet_third_party(debug: bool) -> None:
    """What other packages print for their own developers, silenced: deprecation notices
    (``DeprecationWarning``, ``PendingDeprecationWarning``, ``FutureWarning``, e.g. the
    ``isinstance(treespec, LeafSpec) is deprecated`` that Lightning triggers in torch at every
    validation) and Lightning's tips. A user of ``recur`` can do nothing about them; the toolkit's own
    warnings, deprecations included (a renamed layer option), still show. ``recur --debug`` shows
    everything (each warning once per place); ``python -W`` or ``PYTHONWARNINGS`` choose for themselves.
    """
    if debug:
        warnings.simplefilter("default")
        return
    if not sys.warnoptions:
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category, module=f"(?!{OURS})")
            warnings.filterwarnings("default", category=category, module=OURS)
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoTips) for f in tips.filters):
        tips.addFilter(_NoTips())


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
        except Exception as err:  # one broken command must not take the others down; using it shows why
            p.set_defaults(_run=_Broken(name, err).run)
            continue
        p.set_defaults(_run=module.run)
    return parser


def _user_error_line(err: BaseException) -> str | None:
    """The one line for an error the user can fix, or None when ``err`` is a bug.

    A ``UserError`` (the toolkit's own, raised where input is checked) or an ``OSError`` about a named
    path (a file given on the command line or in a config that is missing, unreadable, a folder, or
    on a full or read-only disk) is the user's to fix. Anything else (``ValueError``, ``KeyError``,
    ``RuntimeError``, ...) is a bug and keeps its traceback.
    """
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``recur`` command; returns the exit status.

    0: done. 2: the user's error (bad input, a missing file, a bad option: argparse's usage errors
    too), one line ``recur <command>: error: <message>`` on stderr, no traceback. 1: a bug, the full
    traceback and a line saying so. 130: interrupted (Ctrl-C). ``recur --debug`` (or
    ``RECUR_DEBUG=1``) prints the traceback of user errors and interrupts as well.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    debug = args.debug or bool(os.environ.get("RECUR_DEBUG"))
    quiet_third_party(debug)
    if args.threads is not None and args.threads < 1:
        print(f"recur: error: --threads {args.threads}: give at least 1 (or leave it out)", file=sys.stderr)
        return 2
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as err:
        if debug:
            traceback.print_exc()
        # an interrupt the command handled says what it saved and how to go on (recur fit: how to resume)
        detail = f"; {err}" if str(err) else ""
        print(f"recur {args.command}: interrupted{detail}", file=sys.stderr)
        return 130
    except Exception as err:
        line = _user_error_line(err)
        if line is None or debug:
            traceback.print_exc()
        if line is not None:
            print(f"recur {args.command}: error: {line}", file=sys.stderr)
            return 2
        print(
            f"recur {args.command}: internal error: {type(err).__name__} (traceback above); please report it "
            "with the command that caused it",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
