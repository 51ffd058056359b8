"""enwik8 (Hutter Prize): the first 100M bytes of an English Wikipedia XML dump.

The standard split: first 90M bytes train, next 5M valid, last 5M test, copied byte for byte
(a split may cut a multi-byte UTF-8 character: read them with ``toolkit.data.lm.read_byte_stream``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from data_prep.common import Result, already_done, download_file, extract, options_key, require_dir
from data_prep.lm_text import split_bytes

HELP = "enwik8 (100M bytes): the standard 90M/5M/5M train/valid/test split, byte level"
URL = "http://mattmahoney.net/dc/enwik8.zip"


def download(dest: str | os.PathLike, force: bool = False) -> Path:
    extract(download_file(URL, dest, force=force), dest, force=force)
    return Path(dest)


def prepare(src: str | os.PathLike, out: str | os.PathLike, valid: int = 5_000_000, test: int = 5_000_000,
            force: bool = False) -> Result:
    """Write ``{train,valid,test}.txt``: exact byte ranges of ``enwik8`` (no newline added)."""
    src = require_dir(src, "enwik8", "unzip enwik8.zip there, or use --download")
    key = options_key("enwik8", src, {"valid": valid, "test": test})
    if done := already_done(out, key, force):
        return done
    full = 100_000_000 if (valid, test) == (5_000_000, 5_000_000) else None  # the standard split
    return split_bytes("enwik8", src, "enwik8", out, valid, test, key, expected=full, newline=False)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--valid", type=int, default=5_000_000, help="bytes of valid (default 5M)")
    parser.add_argument("--test", type=int, default=5_000_000, help="bytes of test, the last ones (default 5M)")


def from_args(args: argparse.Namespace) -> Result:
    if args.download:
        args.src = download(args.src, args.force)
    return prepare(args.src, args.out, args.valid, args.test, args.force)
