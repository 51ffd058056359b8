"""``recur report``: RESULTS.md and plots for an experiment folder."""

from __future__ import annotations

import argparse

COMMAND = "report"
HELP = "write RESULTS.md and PNG plots for an experiment folder (exp/<corpus>) from its metrics.json files"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("exp_dir", help="experiment folder holding one sub-folder (with metrics.json) per model")
    parser.add_argument("--title", help="title of RESULTS.md (default: the folder name)")
    parser.add_argument("--quiet", action="store_true", help="do not print the table")


def run(args: argparse.Namespace) -> int:
    from toolkit.report import write_report

    path = write_report(args.exp_dir, args.title)
    if not args.quiet:
        print(path.read_text(encoding="utf-8").split("\n## Plots")[0])
    print(f"recur report: wrote {path}")
    return 0
