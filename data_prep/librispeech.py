"""LibriSpeech, official layout: ``<subset>/<speaker>/<chapter>/<spk>-<chap>-<utt>.flac`` and
``<spk>-<chap>.trans.txt`` (one ``ID TEXT`` line per utterance). Any subset(s); one manifest each,
named after the subset (``train-clean-100.jsonl``, ``dev-clean.jsonl``...).
"""

from __future__ import annotations

import argparse
import os
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
from toolkit.data.text import read_lines
from toolkit.errors import UserError

HELP = "LibriSpeech (<subset>/<speaker>/<chapter>/*.flac + *.trans.txt): one manifest per subset"
URL = "https://www.openslr.org/resources/12/"
SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100", "train-clean-360",
           "train-other-500")


def download(dest: str | os.PathLike, subsets: tuple[str, ...] = ("dev-clean", "test-clean"),
             force: bool = False) -> Path:
    """Fetch and unpack subsets from openslr.org into ``dest``; returns the ``LibriSpeech`` folder."""
    for s in subsets:
        if s not in SUBSETS:
            raise UserError(f"unknown LibriSpeech subset {s!r}; known: {', '.join(SUBSETS)}")
        extract(download_file(f"{URL}{s}.tar.gz", dest, force=force), dest, force=force)
    return Path(dest) / "LibriSpeech"


def candidates(subset_dir: Path, split: str, rej: Rejections) -> list[Candidate]:
    cands = []
    audio = {p.stem: p for p in subset_dir.glob("*/*/*.flac")}
    listed = set()
    for trans in sorted(subset_dir.glob("*/*/*.trans.txt")):
        lines, bad = read_lines(trans)
        for lineno, why in bad:
            rej.add(split, f"{trans.name}:{lineno}", str(trans), why)
        for line in lines:
            uid, _, text = line.strip().partition(" ")
            if not uid:
                continue
            listed.add(uid)
            path = audio.get(uid, trans.parent / f"{uid}.flac")
            cands.append(Candidate(split, uid, str(path), text.strip() or None, speaker=uid.split("-")[0]))
    for uid in sorted(set(audio) - listed):
        rej.add(split, uid, str(audio[uid]), "no transcript (not in the chapter's .trans.txt)")
    return cands


def prepare(
    src: str | os.PathLike,
    out: str | os.PathLike,
    subsets: tuple[str, ...] | None = None,
    max_duration: float = DEFAULT_MAX_DURATION,
    jobs: int | None = None,
    force: bool = False,
) -> Result:
    """Write ``<subset>.jsonl`` for each subset found (or asked for) under ``src``."""
    src = require_dir(src, "LibriSpeech", "download it with `recur prep librispeech --download`")
    found = [d.name for d in sorted(src.iterdir()) if d.is_dir() and any(d.glob("*/*/*.trans.txt"))]
    wanted = list(subsets) if subsets else found
    missing = [s for s in wanted if s not in found]
    if missing or not wanted:
        raise UserError(f"LibriSpeech subset(s) {', '.join(missing) or '(any)'} not found under {src}: --src must "
                        f"be the LibriSpeech folder holding e.g. dev-clean/<speaker>/<chapter>/")
    key = options_key("librispeech", src, {"subsets": wanted, "max_duration": max_duration})
    if done := already_done(out, key, force):
        return done
    rej, cands = Rejections(), []
    for s in wanted:
        cands += candidates(src / s, s, rej)
    return write_corpus("librispeech", out, cands, key, wanted, max_duration, jobs or default_jobs(), rej)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subsets", nargs="+", default=None,
                        help="subsets to prepare (default: all under --src; with --download: dev-clean test-clean)")


def from_args(args: argparse.Namespace) -> Result:
    if args.download:
        args.src = download(args.src, tuple(args.subsets or ("dev-clean", "test-clean")), args.force)
    return prepare(args.src, args.out, tuple(args.subsets) if args.subsets else None, args.max_duration,
                   args.jobs, args.force)
