"""``recur report``: RESULTS.md and plots for an experiment folder, or the reproduction table of an experiment root."""

from __future__ import annotations

import argparse

from toolkit.errors import UserError

COMMAND = "report"
HELP = (
    "write RESULTS.md and PNG plots for an experiment folder (exp/<corpus>) from its metrics.json files; with "
    "--reproduction, the paper-vs-ours table of every run below an experiment root (exp)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "exp_dir",
        help="experiment folder holding one sub-folder (with metrics.json) per model; with --reproduction, a root "
        "searched at any depth (e.g. exp)",
    )
    parser.add_argument("--title", help="title of RESULTS.md / the reproduction table (default: from the folder name)")
    parser.add_argument(
        "--reproduction",
        action="store_true",
        help="write the reproduction table instead: per run, the paper's figure beside ours, the config, a command "
        "that reruns it, hardware, wall time and steps",
    )
    parser.add_argument(
        "--out", help="with --reproduction: the markdown file to write (default EXP_DIR/REPRODUCTION.md)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the table")


def run(args: argparse.Namespace) -> int:
    if args.out and not args.reproduction:
        raise UserError("--out is for --reproduction; RESULTS.md is always written into the experiment folder")
    if args.reproduction:
        from toolkit.report import write_reproduction

        path = write_reproduction(args.exp_dir, args.out, args.title)
        if not args.quiet:
            print(path.read_text(encoding="utf-8"))
        print(f"recur report: wrote {path}")
        return 0

    from toolkit.report import write_report

    path = write_report(args.exp_dir, args.title)
    if not args.quiet:
        print(path.read_text(encoding="utf-8").split("\n## Plots")[0])
    print(f"recur report: wrote {path}")
    return 0
