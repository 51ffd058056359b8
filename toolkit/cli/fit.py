"""``recur fit --config CFG.yaml [--ckpt_path last] [--print_config] [--section.key=value ...]``."""

from __future__ import annotations

import argparse

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
    from toolkit.train.cli import fit

    fit(args.fit_args)
    return 0
