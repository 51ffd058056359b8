"""LJSpeech-1.1: one reader, ``metadata.csv`` (``id|raw text|normalized text``) and ``wavs/<id>.wav``.

Audio may be the original 22.05 kHz WAV or re-encoded FLAC (``wavs/<id>.flac``). Transcripts are the
normalized column. The fixed split, by id order: the last ``test_size`` ids are test, the
``dev_size`` before them dev, the rest train. ``lm_text.txt`` gets every sentence of
``metadata_all.csv`` (when present) whose id has no audio here: same-domain text for an LM that
never saw a test sentence.
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

HELP = "LJSpeech-1.1 (metadata.csv + wavs/*.wav|flac): train/dev/test by id order, plus same-domain LM text"
URL = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
SPLITS = ("train", "dev", "test")


def download(dest: str | os.PathLike, force: bool = False) -> Path:
    """Fetch and unpack LJSpeech-1.1 (2.6 GB) into ``dest``; returns the corpus folder."""
    archive = download_file(URL, dest, force=force)
    return extract(archive, dest, force=force) / "LJSpeech-1.1"


def read_metadata(path: Path, rej: Rejections | None = None) -> dict[str, str | None]:
    """``id -> normalized text`` (None when the line has no text) from an LJSpeech metadata file."""
    lines, bad = read_lines(path)
    if rej is not None:
        for lineno, why in bad:
            rej.add("", f"{path.name}:{lineno}", str(path), why)
    meta: dict[str, str | None] = {}
    for line in lines:
        if not line.strip():
            continue
        fields = line.split("|")
        uid = fields[0].strip()
        # the normalized column; the raw one where normalization left it empty
        text = fields[2] if len(fields) >= 3 and fields[2].strip() else fields[1] if len(fields) >= 2 else ""
        if uid in meta and rej is not None:
            rej.add("", uid, str(path), "duplicate id (an earlier line has it)")
            continue
        meta[uid] = text.strip() or None
    return meta


def _audio(wavs: Path, uid: str) -> Path:
    for ext in (".wav", ".flac", ".WAV", ".FLAC"):
        if (wavs / f"{uid}{ext}").is_file():
            return wavs / f"{uid}{ext}"
    return wavs / f"{uid}.wav"


def prepare(
    src: str | os.PathLike,
    out: str | os.PathLike,
    dev_size: int = 48,
    test_size: int = 48,
    max_duration: float = DEFAULT_MAX_DURATION,
    jobs: int | None = None,
    force: bool = False,
    split_file: str | os.PathLike | None = None,
) -> Result:
    """Write ``train/dev/test.jsonl``, ``lm_text.txt`` (if ``metadata_all.csv`` exists) and ``rejected.tsv``.

    ``split_file`` (``id<TAB>split`` lines) replaces the fixed split; ids it does not list are left out.
    """
    src = require_dir(src, "LJSpeech", f"download it with `recur prep ljspeech --download --src {src}`")
    meta_path = src / "metadata.csv"
    if not meta_path.is_file():
        raise UserError(f"{meta_path} not found: --src must be the LJSpeech-1.1 folder (metadata.csv, wavs/)")
    if dev_size < 0 or test_size < 0:
        raise UserError("--dev-size and --test-size must be >= 0")
    assigned = _read_split_file(split_file) if split_file else None
    key = options_key("ljspeech", src, {"dev": dev_size, "test": test_size, "max_duration": max_duration,
                                        "split_file": assigned})
    if done := already_done(out, key, force):
        return done
    rej = Rejections()
    meta = read_metadata(meta_path, rej)
    ids = sorted(meta)
    if assigned is not None:
        ids = [u for u in ids if u in assigned]
    elif len(ids) <= dev_size + test_size:
        raise UserError(f"{meta_path} lists {len(ids)} utterances, too few for dev {dev_size} + test {test_size}")
    n_train = len(ids) - dev_size - test_size
    split_of = assigned or {
        u: "train" if i < n_train else "dev" if i < n_train + dev_size else "test" for i, u in enumerate(ids)
    }
    wavs = src / "wavs"
    cands = [Candidate(split_of[u], u, str(_audio(wavs, u)), meta[u], speaker="LJ") for u in ids]
    for c in cands:
        if c.text is None:
            c.problem = "empty transcript"
    text_files, extra = {}, {}
    all_path = src / "metadata_all.csv"
    if all_path.is_file():
        has_audio = set(meta) | {p.stem for p in wavs.glob("*") if p.suffix.lower() in (".wav", ".flac")}
        full = read_metadata(all_path)
        lm = [t for u, t in sorted(full.items()) if u not in has_audio and t]
        text_files["lm_text.txt"] = lm
    splits = sorted(set(split_of.values()), key=lambda s: ((SPLITS + (s,)).index(s), s)) if assigned else SPLITS
    return write_corpus("ljspeech", out, cands, key, splits, max_duration, jobs or default_jobs(), rej,
                        text_files, extra=extra)


def _read_split_file(path: str | os.PathLike) -> dict[str, str]:
    if not os.path.isfile(path):
        raise UserError(f"--split file {path} not found (want lines of id<TAB>split)")
    lines, bad = read_lines(path)
    out = {}
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or bad:
            raise UserError(f"{path}:{bad[0][0] if bad else lineno}: want `id<TAB>split` lines in UTF-8")
        out[parts[0]] = parts[1]
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="fixed", metavar="fixed|FILE",
                        help="fixed (default: by id order, the last --test-size test, the --dev-size before dev) "
                             "or a file of id<TAB>split lines")
    parser.add_argument("--dev-size", type=int, default=48, help="utterances in dev, before test")
    parser.add_argument("--test-size", type=int, default=48, help="the last utterances by id")


def from_args(args: argparse.Namespace) -> Result:
    if args.download:
        args.src = download(args.src, args.force)
    return prepare(args.src, args.out, args.dev_size, args.test_size, args.max_duration, args.jobs, args.force,
                   None if args.split == "fixed" else args.split)
