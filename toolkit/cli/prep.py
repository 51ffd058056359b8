"""``recur prep CORPUS --src PATH --out DIR``: a raw corpus -> manifests (speech) or text files (LMs)."""

from __future__ import annotations

import argparse
import time

COMMAND = "prep"
HELP = "prepare a corpus: manifests (JSON Lines) and rejected.tsv for speech, split text files for LMs"


def configure(parser: argparse.ArgumentParser) -> None:
    import data_prep

    sub = parser.add_subparsers(dest="corpus", metavar="CORPUS", required=True)
    for name in data_prep.available():
        module = data_prep.get(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        needs_src = name != "synth"
        p.add_argument("--src", required=needs_src, default=None,
                       help="the corpus as distributed" + ("" if needs_src else " (synth: a text file, optional)"))
        p.add_argument("--out", required=True, help="output folder for manifests / text files")
        p.add_argument("--force", action="store_true", help="redo even if --out was prepared with these options")
        p.add_argument("--jobs", type=int, default=None, help="parallel workers (default: cores, at most 8)")
        if hasattr(module, "download"):
            p.add_argument("--download", action="store_true",
                           help=f"first fetch the corpus into --src from its official address ({module.URL})")
        else:
            p.set_defaults(download=False)
        p.add_argument("--max-duration", type=float, default=60.0,
                       help="skip recordings longer than this many seconds")
        module.configure(p)


def run(args: argparse.Namespace) -> int:
    import data_prep
    from toolkit.errors import ConfigError

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError("--jobs must be a positive integer")
    module = data_prep.get(args.corpus)
    start = time.perf_counter()
    result = module.from_args(args)
    print(result.summary())
    if not result.reused:
        print(f"  took {time.perf_counter() - start:.1f} s")
    return 0
