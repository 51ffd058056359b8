"""``recur fit --config CFG.yaml [--ckpt_path last] [--print_config] [--section.key=value ...]``."""

from __future__ import annotations

import argparse
import re
import traceback
from pathlib import Path

COMMAND = "fit"
HELP = "train a model from a YAML config (LightningCLI); resume with --ckpt_path last"


def configure(parser: argparse.ArgumentParser) -> None:
    # Every argument, --help included, belongs to LightningCLI (jsonargparse), which knows the
    # classes the config names; argparse only hands the words over untouched.
    def pass_through(args=None, namespace=None):
        ns = namespace or argparse.Namespace()
        for key, value in parser._defaults.items():
            setattr(ns, key, value)
        ns.fit_args = list(args or [])
        return ns, []

    parser.parse_known_args = pass_through


def run(args: argparse.Namespace) -> int:
    from toolkit.errors import UserError
    from toolkit.train.cli import fit

    try:
        fit(args.fit_args)
    except ValueError as err:
        refusal = config_refusal(err)
        if refusal is None:
            raise
        raise UserError(refusal) from err
    return 0


def config_refusal(err: ValueError) -> str | None:
    """One line for a class of the config that refused its arguments, or None for any other ValueError.

    jsonargparse builds the config's classes (model, data, callbacks) and, when a constructor raises,
    reports it as a ValueError of its own ("Does not validate against any of the Union subtypes")
    that lists each candidate type's error: a bad value in the config (an unknown encoder, a missing
    tokenizer). Only such an error, raised by jsonargparse itself, is turned into one line; a
    ValueError raised anywhere else (while training, say) is a bug and keeps its traceback.
    """
    frames = traceback.extract_tb(err.__traceback__)
    if not frames or "jsonargparse" not in Path(frames[-1].filename).parts:
        return None
    text = str(err)
    given = re.search(r"class_path='([\w.]+)'", text)
    errors = text.split("\nErrors:\n", 1)[1].split("\nGiven value", 1)[0] if "\nErrors:\n" in text else ""
    reasons = [
        " ".join(line.strip().removeprefix("- ").split())
        for line in errors.splitlines()
        if line.strip() and "Expected a <class 'NoneType'>" not in line
    ]
    reason = "; ".join(reasons) or text.splitlines()[0]
    return f"the config's {given.group(1)}: {reason}" if given else f"the config: {reason}"
