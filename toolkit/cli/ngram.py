"""``recur ngram``: a word n-gram LM (interpolated absolute discounting or Kneser-Ney) as an ARPA file for
KenLM decoding, with its perplexity on held-out text."""

from __future__ import annotations

import argparse

COMMAND = "ngram"
HELP = "train a word n-gram language model on text files and write it in ARPA format (for recur decode --lm)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "texts", nargs="+", help="text files, one sentence per line, or manifests (.jsonl: their transcripts)"
    )
    parser.add_argument("--out", required=True, help="output .arpa file")
    parser.add_argument("--order", type=int, default=3, help="n-gram order")
    parser.add_argument("--lowercase", action="store_true", help="lowercase the text first")
    parser.add_argument(
        "--remove-punct", action="store_true",
        help="drop punctuation (apostrophes kept) as the acoustic model's tokenizer does, so 'jail.' counts as 'jail'",
    )  # fmt: skip
    parser.add_argument(
        "--smoothing", choices=("absolute", "kn"), default="absolute",
        help="interpolated absolute discounting or interpolated Kneser-Ney",
    )  # fmt: skip
    parser.add_argument(
        "--eval", nargs="+", default=[], metavar="TEXT",
        help="held-out text files or manifests: print the model's perplexity on each (normalised as the training text)",
    )  # fmt: skip


def _sentences(paths: list[str], args: argparse.Namespace) -> list[str]:
    """The non-empty lines of ``paths``, normalised as asked (training and held-out text alike)."""
    from toolkit.data.lm import read_texts
    from toolkit.data.text import normalize_text

    lines = (normalize_text(line, args.lowercase, args.remove_punct) for line in read_texts(paths))
    return [line for line in lines if line]


def run(args: argparse.Namespace) -> int:
    from toolkit.decode.ngram import NGramLM
    from toolkit.errors import ConfigError, UserError

    if args.order < 2:
        raise ConfigError(f"--order {args.order}: an n-gram model needs order 2 or more (KenLM reads bigrams and up)")
    lines = _sentences(args.texts, args)
    if not lines:
        raise UserError(f"{' '.join(args.texts)}: no text to train on (empty after normalisation)")
    lm = NGramLM(lines, order=args.order, smoothing=args.smoothing)
    path = lm.write_arpa(args.out)
    sizes = ", ".join(f"{n}-grams {len(lm.counts[n]):,}" for n in range(1, args.order + 1))
    print(f"recur ngram: {len(lines):,} sentences -> {path} ({sizes})")
    for held_out in args.eval:
        ppl, words, unknown = lm.perplexity(_sentences([held_out], args))
        print(f"recur ngram: {held_out}: perplexity {ppl:.1f} over {words:,} words (</s> included), {unknown:,} <unk>")
    return 0
