"""``recur tokenizer``: train a tokenizer from manifest transcripts or text files and save it."""

from __future__ import annotations

import argparse

COMMAND = "tokenizer"
HELP = "train a char/word/bpe/unigram/byte tokenizer from manifests (.jsonl) or text files; save it to a folder"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="training manifests (.jsonl: their 'text') or plain text files")
    parser.add_argument("--out", required=True, help="folder to save the tokenizer in (tokenizer.json)")
    parser.add_argument(
        "--kind",
        default="char",
        choices=["char", "word", "bpe", "unigram", "byte"],
        help="characters, whole words, sentencepiece BPE or unigram pieces, or UTF-8 bytes",
    )
    parser.add_argument("--vocab-size", type=int, help="cap (char/word) or target size (bpe/unigram)")
    parser.add_argument("--min-count", type=int, default=1, help="char/word: keep symbols seen this often")
    parser.add_argument("--lowercase", action="store_true", help="lowercase text before tokenising")
    parser.add_argument("--remove-punct", action="store_true", help="drop punctuation before tokenising")


def run(args: argparse.Namespace) -> int:
    from toolkit.data.lm import read_texts
    from toolkit.data.tokenizer import train_tokenizer

    tok = train_tokenizer(
        args.kind, read_texts(args.inputs), args.vocab_size, args.min_count, args.lowercase, args.remove_punct
    )
    path = tok.save(args.out)
    print(f"recur tokenizer: {args.kind} tokenizer with {tok.vocab_size} symbols saved to {path}")
    return 0
