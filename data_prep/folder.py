"""Any folder of audio files with a same-named ``.txt`` transcript beside each, or a TSV ``path<TAB>text``.

Ids are the relative path without extension (``/`` -> ``-``). Everything goes to one split
(``--split``, default ``all``); split it afterwards or prepare train/dev/test folders separately.
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
    options_key,
    write_corpus,
)
from toolkit.data.manifest import Rejections
from toolkit.data.text import read_lines, read_transcript
from toolkit.errors import UserError

HELP = "a folder of audio files with same-named .txt transcripts, or a TSV file of path<TAB>text"
AUDIO = (".wav", ".flac", ".ogg", ".mp3", ".sph", ".opus")


def _uid(rel: Path) -> str:
    return "-".join(rel.with_suffix("").parts).replace(" ", "_")


def candidates_from_folder(root: Path, split: str, rej: Rejections) -> list[Candidate]:
    cands = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in AUDIO or not p.is_file():
            continue
        uid, txt = _uid(p.relative_to(root)), p.with_suffix(".txt")
        if not txt.is_file():
            cands.append(Candidate(split, uid, str(p), None, problem=f"no transcript ({txt.name} missing)"))
            continue
        try:
            cands.append(Candidate(split, uid, str(p), read_transcript(txt)))
        except ValueError as err:
            cands.append(Candidate(split, uid, str(p), None, problem=str(err)))
    return cands


def candidates_from_tsv(path: Path, split: str, rej: Rejections) -> list[Candidate]:
    lines, bad = read_lines(path)
    for lineno, why in bad:
        rej.add(split, f"{path.name}:{lineno}", str(path), why)
    cands = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        audio, _, text = line.partition("\t")
        audio_path = Path(audio) if os.path.isabs(audio) else path.parent / audio
        uid = _uid(Path(audio)) if not os.path.isabs(audio) else _uid(Path(Path(audio).name))
        text = " ".join(text.split())
        cands.append(Candidate(split, uid, str(audio_path), text or None,
                               problem=None if text else f"empty transcript (line {lineno})"))
    return cands


def prepare(
    src: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "all",
    max_duration: float = DEFAULT_MAX_DURATION,
    jobs: int | None = None,
    force: bool = False,
) -> Result:
    """Write ``<split>.jsonl`` and ``rejected.tsv`` from a folder or a TSV file."""
    src = Path(src)
    if not src.exists():
        raise UserError(f"{src} not found: give a folder of audio + .txt files or a TSV of path<TAB>text")
    key = options_key("folder", src, {"split": split, "max_duration": max_duration})
    if done := already_done(out, key, force):
        return done
    rej = Rejections()
    cands = candidates_from_folder(src, split, rej) if src.is_dir() else candidates_from_tsv(src, split, rej)
    if not cands:
        raise UserError(f"no audio files ({', '.join(AUDIO)}) found in {src}")
    return write_corpus("folder", out, cands, key, (split,), max_duration, jobs or default_jobs(), rej)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="all", help="name of the manifest written, <split>.jsonl")


def from_args(args: argparse.Namespace) -> Result:
    return prepare(args.src, args.out, args.split, args.max_duration, args.jobs, args.force)
