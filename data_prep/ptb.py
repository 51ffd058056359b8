"""Penn Treebank, Mikolov's LM splits: ``ptb.{train,valid,test}.txt`` (word, 10k vocabulary, ``<unk>``)
and ``ptb.char.{train,valid,test}.txt`` (characters separated by spaces, ``_`` between words).

Writes ``train.txt``, ``valid.txt``, ``test.txt`` unchanged, one sentence per line. Both levels are
read as whitespace-separated symbols plus ``<eos>`` per line (a ``word`` tokenizer).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from data_prep.common import (
    Result,
    already_done,
    download_file,
    extract,
    options_key,
    require_dir,
    write_text_corpus,
)
from data_prep.lm_text import SPLITS, copy_lines, count_words, find_file

HELP = "Penn Treebank (Mikolov's ptb.*.txt / ptb.char.*.txt): word or char level train/valid/test text"
URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"


def download(dest: str | os.PathLike, force: bool = False) -> Path:
    """Fetch Mikolov's simple-examples archive; returns the folder holding the ptb files."""
    return extract(download_file(URL, dest, force=force), dest, force=force) / "simple-examples" / "data"


def prepare(src: str | os.PathLike, out: str | os.PathLike, level: str = "word", force: bool = False) -> Result:
    """Write ``{train,valid,test}.txt`` of the chosen ``level`` with token counts (incl. ``<eos>``)."""
    src = require_dir(src, "PTB", "it is in Mikolov's simple-examples.tgz (data/); or use --download")
    if level not in ("word", "char"):
        raise ValueError(f"--level must be word or char, got {level!r}")
    infix = "ptb.char." if level == "char" else "ptb."
    paths = {s: find_file(src, [f"{infix}{s}.txt"], "--src must hold the ptb.*.txt files") for s in SPLITS}
    key = options_key("ptb", src, {"level": level})
    if done := already_done(out, key, force):
        return done
    return write_text_corpus(f"ptb ({level})", out, {f"{s}.txt": copy_lines(p) for s, p in paths.items()},
                             key, count_words)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--level", choices=("word", "char"), default="word", help="word or character level")


def from_args(args: argparse.Namespace) -> Result:
    if args.download:
        args.src = download(args.src, args.force)
    return prepare(args.src, args.out, args.level, args.force)
