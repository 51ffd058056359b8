"""text8 (Mahoney): 100M characters of cleaned Wikipedia (a-z and space) on one line.

The standard split: first 90M characters train, next 5M valid, last 5M test; each written as one
line (a character LM reads it as one stream).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from data_prep.common import Result, download_file, extract
from data_prep.lm_text import add_split_arguments, prepare_byte_split

HELP = "text8 (100M characters): the standard 90M/5M/5M train/valid/test split"
URL = "http://mattmahoney.net/dc/text8.zip"


def download(dest: str | os.PathLike, force: bool = False) -> Path:
    extract(download_file(URL, dest, force=force), dest, force=force)
    return Path(dest)


def prepare(src: str | os.PathLike, out: str | os.PathLike, valid: int = 5_000_000, test: int = 5_000_000,
            force: bool = False) -> Result:
    """Write ``{train,valid,test}.txt`` (bytes copied exactly, a newline appended)."""
    return prepare_byte_split("text8", src, out, valid, test, force, newline=True)


def configure(parser: argparse.ArgumentParser) -> None:
    add_split_arguments(parser, "characters")


def from_args(args: argparse.Namespace) -> Result:
    if args.download:
        args.src = download(args.src, args.force)
    return prepare(args.src, args.out, args.valid, args.test, args.force)
