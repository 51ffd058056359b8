"""``recur report``: RESULTS.md and plots for an experiment folder (and, with --results, the generated section of a
recipe's committed RESULTS.md), or the reproduction table of an experiment root."""

from __future__ import annotations

import argparse
from pathlib import Path

from toolkit.errors import UserError

COMMAND = "report"
HELP = (
    "write RESULTS.md and PNG plots for an experiment folder (exp/<corpus>) from its metrics.json files; with "
    "--results FILE, also refresh that experiment's generated table in a recipe's committed RESULTS.md; with "
    "--reproduction, the paper-vs-ours table of every run below an experiment root (exp)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "exp_dir",
        help="experiment folder holding one sub-folder (with metrics.json) per model (or runs at any depth, e.g. "
        "exp/adding/T100/indrnn); with --reproduction, a root searched at any depth (e.g. exp)",
    )
    parser.add_argument("--title", help="title of RESULTS.md / the reproduction table (default: from the folder name)")
    parser.add_argument(
        "--results",
        metavar="FILE",
        help="also write or refresh the generated part of FILE (e.g. recipes/fsdd/RESULTS.md): the text between "
        "'<!-- recur report: begin EXP_DIR -->' and '<!-- recur report: end -->' is replaced by the tables, every "
        "other byte (the hand-written commands and notes) is kept; a file without that section gets it appended, "
        "a missing file is created; written atomically, and left alone when nothing changed",
    )
    parser.add_argument(
        "--reproduction",
        action="store_true",
        help="write the reproduction table instead: per run, the paper's figure beside ours, the config, a command "
        "that reruns it, hardware, wall time and steps",
    )
    parser.add_argument(
        "--out", help="with --reproduction: the markdown file to write (default: EXP_DIR/REPRODUCTION.md)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the table")


def run(args: argparse.Namespace) -> int:
    if args.out and not args.reproduction:
        raise UserError(
            "--out is for --reproduction; RESULTS.md is always written into the experiment folder "
            "(--results FILE refreshes a recipe's RESULTS.md)"
        )
    if args.reproduction:
        if args.results:
            raise UserError("--results refreshes one experiment folder's table; run it without --reproduction")
        from toolkit.report import write_reproduction

        path = write_reproduction(args.exp_dir, args.out, args.title)
        if not args.quiet:
            print(path.read_text(encoding="utf-8"))
        print(f"recur report: wrote {path}")
        return 0

    from toolkit.report import refresh_results, write_report

    path = write_report(args.exp_dir, args.title)
    if not args.quiet:
        print(path.read_text(encoding="utf-8").split("\n## Plots")[0])
    print(f"recur report: wrote {path}")
    if args.results:
        results, how = refresh_results(args.results, args.exp_dir)
        said = {
            "created": "created {path} with the {exp} section",
            "added": "added the {exp} section to {path}",
            "replaced": "refreshed the {exp} section of {path}",
            "unchanged": "{path}: the {exp} section is up to date (file not rewritten)",
        }[how]
        print("recur report: " + said.format(path=results, exp=Path(args.exp_dir).as_posix()))
    return 0
