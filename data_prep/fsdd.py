"""Free Spoken Digit Dataset: ``recordings/{digit}_{speaker}_{index}.wav`` (8 kHz mono).

The dataset's own split: index 0-4 test, 5-49 train. The transcript is the digit's English word.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from data_prep.common import (
    DEFAULT_MAX_DURATION,
    Candidate,
    Result,
    already_done,
    default_jobs,
    download_file,
    extract,
    options_key,
    require_dir,
    write_corpus,
)
from toolkit.data.manifest import Rejections
from toolkit.errors import UserError

HELP = "Free Spoken Digit Dataset (recordings/{digit}_{speaker}_{index}.wav): index 0-4 test, rest train"
URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


def download(dest: str | os.PathLike, force: bool = False) -> Path:
    """Fetch and unpack the FSDD release into ``dest``; returns the folder holding ``recordings/``."""
    archive = download_file(URL, dest, force=force)
    root = extract(archive, dest, force=force)
    found = sorted(root.glob("free-spoken-digit-dataset-*"))
    return found[-1] if found else root


def prepare(
    src: str | os.PathLike,
    out: str | os.PathLike,
    test_max_index: int = 4,
    max_duration: float = DEFAULT_MAX_DURATION,
    jobs: int | None = None,
    force: bool = False,
) -> Result:
    """Write ``train.jsonl``, ``test.jsonl`` and ``rejected.tsv`` (text = the digit's word)."""
    src = require_dir(src, "FSDD", "clone github.com/Jakobovski/free-spoken-digit-dataset or use --download")
    rec = src / "recordings" if (src / "recordings").is_dir() else src
    files = sorted(p for p in rec.iterdir() if p.suffix.lower() == ".wav")
    if not files:
        raise UserError(f"no {{digit}}_{{speaker}}_{{index}}.wav files in {rec}: --src must hold recordings/")
    key = options_key("fsdd", src, {"test_max_index": test_max_index, "max_duration": max_duration})
    if done := already_done(out, key, force):
        return done
    rej, cands = Rejections(), []
    for p in files:
        m = NAME.match(p.stem)
        if not m:
            rej.add("", p.stem, str(p), "name not {digit}_{speaker}_{index}")
            continue
        digit, speaker, index = int(m.group(1)), m.group(2), int(m.group(3))
        split = "test" if index <= test_max_index else "train"
        cands.append(Candidate(split, p.stem, str(p), WORDS[digit], speaker=speaker))
    return write_corpus("fsdd", out, cands, key, ("train", "test"), max_duration, jobs or default_jobs(), rej)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test-max-index", type=int, default=4,
                        help="recordings with index <= this are test (default: 4, the dataset's convention)")


def from_args(args: argparse.Namespace) -> Result:
    if args.download:
        args.src = download(args.src, args.force)
    return prepare(args.src, args.out, args.test_max_index, args.max_duration, args.jobs, args.force)
