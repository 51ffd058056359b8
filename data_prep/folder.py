"""Any folder of audio files with a same-named ``.txt`` transcript beside each, or a TSV ``path<TAB>text``.

Ids are the relative path without extension (``/`` -> ``-``). Everything goes to one split
(``--split``, default ``all``), or, with ``--dev-fraction`` / ``--test-fraction``, to train/dev/test by a
stable hash of each id: an id's set depends on nothing but the id (the same hash as the datamodule's
``dev_from_train``), so files added later never move a test utterance into training. A held-out set the
hash leaves empty (a folder of a few files) takes the lowest-hash utterance of a set that has two or more.
"""

from __future__ import annotations

import argparse
import hashlib
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
from toolkit.errors import ConfigError, UserError

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


def hash_fraction(uid: str) -> float:
    """A number in [0, 1) fixed by ``uid`` alone (md5, as ``SpeechDataModule``'s ``dev_from_train``)."""
    return int(hashlib.md5(uid.encode()).hexdigest()[:8], 16) % 10_000 / 10_000


def split_by_hash(cands: list[Candidate], dev_fraction: float, test_fraction: float) -> list[str]:
    """Set each candidate's split to test, dev or train by :func:`hash_fraction`; the splits written."""
    for c in cands:
        h = hash_fraction(c.id)
        c.split = "test" if h < test_fraction else "dev" if h < test_fraction + dev_fraction else "train"
    held = [s for s, f in (("dev", dev_fraction), ("test", test_fraction)) if f > 0]
    # a small folder may hash nothing below a fraction: an empty set would only fail later, in training
    usable = sorted((c for c in cands if c.problem is None and c.text), key=lambda c: hash_fraction(c.id))
    for name in held:
        if any(c.split == name for c in usable):
            continue
        for donor in ("train", *held):  # train gives first; another held-out set only if it has two
            members = [c for c in usable if c.split == donor]
            if len(members) > 1:
                members[0].split = name
                break
    return ["train", *held]


def prepare(
    src: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "all",
    max_duration: float = DEFAULT_MAX_DURATION,
    jobs: int | None = None,
    force: bool = False,
    dev_fraction: float = 0.0,
    test_fraction: float = 0.0,
) -> Result:
    """Write ``<split>.jsonl`` (or ``train/dev/test.jsonl`` when a fraction is given) and ``rejected.tsv``
    from a folder or a TSV file."""
    src = Path(src)
    if not src.exists():
        raise UserError(f"{src} not found: give a folder of audio + .txt files or a TSV of path<TAB>text")
    for name, f in (("--dev-fraction", dev_fraction), ("--test-fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ConfigError(f"{name} {f:g}: give a fraction in [0, 1), e.g. 0.1")
    if dev_fraction + test_fraction >= 1.0:
        raise ConfigError(f"--dev-fraction + --test-fraction = {dev_fraction + test_fraction:g} leaves no training set")
    by_hash = dev_fraction > 0 or test_fraction > 0
    options = {"split": split, "max_duration": max_duration}
    if by_hash:
        options = {"dev_fraction": dev_fraction, "test_fraction": test_fraction, "max_duration": max_duration}
    key = options_key("folder", src, options)
    if done := already_done(out, key, force):
        return done
    rej = Rejections()
    cands = candidates_from_folder(src, split, rej) if src.is_dir() else candidates_from_tsv(src, split, rej)
    if not cands:
        raise UserError(f"no audio files ({', '.join(AUDIO)}) found in {src}")
    splits = split_by_hash(cands, dev_fraction, test_fraction) if by_hash else [split]
    return write_corpus("folder", out, cands, key, splits, max_duration, jobs or default_jobs(), rej)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split", help="name of the one manifest written, <split>.jsonl (all.jsonl when no fraction is given)"
    )
    parser.add_argument("--dev-fraction", type=float, default=0.0,
                        help="write train/dev/test.jsonl instead: this fraction of ids (by a stable hash) is dev")
    parser.add_argument("--test-fraction", type=float, default=0.0,
                        help="... and this fraction test (e.g. --dev-fraction 0.1 --test-fraction 0.1)")


def from_args(args: argparse.Namespace) -> Result:
    if args.split is not None and (args.dev_fraction or args.test_fraction):
        raise ConfigError("--split names the one manifest; with --dev-fraction/--test-fraction the manifests "
                          "are train/dev/test: give one or the other")
    return prepare(args.src, args.out, args.split or "all", args.max_duration, args.jobs, args.force,
                   args.dev_fraction, args.test_fraction)
