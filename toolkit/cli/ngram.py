"""``recur ngram``: a word n-gram LM (interpolated absolute discounting) as an ARPA file for KenLM decoding."""

from __future__ import annotations

import argparse

COMMAND = "ngram"
HELP = "train a word n-gram language model on text files and write it in ARPA format (for recur decode --lm)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="+", help="text files, one sentence per line")
    parser.add_argument("--out", required=True, help="output .arpa file")
    parser.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    parser.add_argument("--lowercase", action="store_true", help="lowercase the text first")


def run(args: argparse.Namespace) -> int:
    from toolkit.data.lm import read_text
    from toolkit.data.text import normalize_text
    from toolkit.decode.ngram import NGramLM

    lines = [normalize_text(line, args.lowercase, False) for path in args.texts for line in read_text(path)]
    lm = NGramLM([line for line in lines if line], order=args.order)
    path = lm.write_arpa(args.out)
    sizes = ", ".join(f"{n}-grams {len(lm.counts[n]):,}" for n in range(1, args.order + 1))
    print(f"recur ngram: {len(lines):,} sentences -> {path} ({sizes})")
    return 0
