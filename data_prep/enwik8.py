"""enwik8 (Hutter Prize): the first 100M bytes of an English Wikipedia XML dump.

The standard split: first 90M bytes train, next 5M valid, last 5M test, copied byte for byte
(a split may cut a multi-byte UTF-8 character: read them with ``toolkit.data.lm.read_byte_stream``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from data_prep.common import Result, download_file, extract
from data_prep.lm_text import add_split_arguments, prepare_byte_split

HELP = "enwik8 (100M bytes): the standard 90M/5M/5M train/valid/test split, byte level"
URL = "http://mattmahoney.net/dc/enwik8.zip"


def download(dest: str | os.PathLike, force: bool = False) -> Path:
    extract(download_file(URL, dest, force=force), dest, force=force)
    return Path(dest)


def prepare(src: str | os.PathLike, out: str | os.PathLike, valid: int = 5_000_000, test: int = 5_000_000,
            force: bool = False) -> Result:
    """Write ``{train,valid,test}.txt``: exact byte ranges of ``enwik8`` (no newline added)."""
    return prepare_byte_split("enwik8", src, out, valid, test, force, newline=False)


def configure(parser: argparse.ArgumentParser) -> None:
    add_split_arguments(parser, "bytes")


def from_args(args: argparse.Namespace) -> Result:
    if args.download:
        args.src = download(args.src, args.force)
    return prepare(args.src, args.out, args.valid, args.test, args.force)
