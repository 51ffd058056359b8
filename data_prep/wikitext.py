"""WikiText-2 and WikiText-103 (Merity et al., 2016): ``wiki.{train,valid,test}.tokens`` (tokenised,
``<unk>`` for rare words) or ``wiki.*.raw`` (the raw variant). Lines are kept as they are, blank
ones and ``= heading =`` ones included, as the published token counts assume (``<eos>`` per line).
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

HELP = "WikiText-2 / WikiText-103 (wiki.*.tokens or wiki.*.raw): train/valid/test text"
URL = "https://wikitext.smerity.com/"


def download(dest: str | os.PathLike, variant: str = "2", raw: bool = False, force: bool = False) -> Path:
    """Fetch and unpack ``wikitext-{2,103}[-raw]-v1.zip``; returns the unpacked folder."""
    name = f"wikitext-{variant}{'-raw' if raw else ''}"
    extract(download_file(f"{URL}{name}-v1.zip", dest, force=force), dest, force=force)
    return Path(dest) / name


def prepare(src: str | os.PathLike, out: str | os.PathLike, variant: str = "2", raw: bool = False,
            force: bool = False) -> Result:
    """Write ``{train,valid,test}.txt`` with token counts (whitespace tokens + ``<eos>`` per line)."""
    src = require_dir(src, "WikiText", "unpack wikitext-2-v1.zip (or 103) there, or use --download")
    if variant not in ("2", "103"):
        raise ValueError(f"--variant must be 2 or 103, got {variant!r}")
    ext = "raw" if raw else "tokens"
    folder = f"wikitext-{variant}{'-raw' if raw else ''}"
    hint = f"--src must hold {folder}/wiki.train.{ext}"
    paths = {s: find_file(src / folder if (src / folder).is_dir() else src, [f"wiki.{s}.{ext}"], hint)
             for s in SPLITS}
    key = options_key("wikitext", src, {"variant": variant, "raw": raw})
    if done := already_done(out, key, force):
        return done
    return write_text_corpus(folder, out, {f"{s}.txt": copy_lines(p) for s, p in paths.items()}, key, count_words)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=("2", "103"), default="2", help="WikiText-2 or WikiText-103")
    parser.add_argument("--raw", action="store_true", help="the raw (untokenised) files")


def from_args(args: argparse.Namespace) -> Result:
    if args.download:
        args.src = download(args.src, args.variant, args.raw, args.force)
    return prepare(args.src, args.out, args.variant, args.raw, args.force)
