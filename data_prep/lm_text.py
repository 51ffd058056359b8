"""Helpers shared by the language-model corpora (ptb, wikitext, text8, enwik8): finding files, counting."""

from __future__ import annotations

import os
from pathlib import Path

from toolkit.errors import UserError

SPLITS = ("train", "valid", "test")


def find_file(src: Path, names: list[str], hint: str) -> Path:
    """The first of ``names`` found in ``src`` or one level below it."""
    for name in names:
        for cand in (src / name, *src.glob(f"*/{name}")):
            if cand.is_file():
                return cand
    raise UserError(f"{names[0]} not found in {src} (nor one folder below): {hint}")


def count_words(path: str | os.PathLike) -> int:
    """Tokens as the LM literature counts them: whitespace-separated symbols plus one ``<eos>`` per line."""
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            n += len(line.split()) + 1
    return n


def count_chars(path: str | os.PathLike) -> int:
    """Characters (bytes for byte-level corpora) in the file, line ends excluded."""
    n = 0
    with open(path, "rb") as f:
        for line in f:
            n += len(line.rstrip(b"\n"))
    return n


def copy_lines(path: Path):
    """A producer of the lines of ``path`` (UTF-8, newline stripped), checked as it goes."""
    def produce():
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    yield raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise UserError(f"{path}:{lineno}: not UTF-8; is this the original file?") from None
    return produce


def split_bytes(corpus: str, src: Path, name: str, out: str | os.PathLike, valid: int, test: int,
                key: dict, expected: int | None = None, newline: bool = True):
    """Cut the single file ``src/name`` into train | valid | test by byte offsets (the last ``test`` bytes
    are test, the ``valid`` before them valid), copied exactly, each with a trailing newline if asked."""
    from data_prep.common import Result, copy_bytes, mark_done

    path = find_file(src, [name], f"--src must hold the {name} file")
    size = path.stat().st_size
    if expected is not None and size != expected:
        raise UserError(f"{path} has {size:,} bytes, expected {expected:,}: is it the original, complete file?")
    if valid < 0 or test < 0 or valid + test >= size:
        raise UserError(f"--valid {valid} + --test {test} must be smaller than the file ({size:,} bytes)")
    out = Path(out)
    ranges = {"train": (0, size - valid - test), "valid": (size - valid - test, valid), "test": (size - test, test)}
    counts, extra = {}, {}
    for split, (start, length) in ranges.items():
        dest = out / f"{split}.txt"
        copy_bytes(path, dest, start, length, suffix=b"\n" if newline else b"")
        counts[f"{split}.txt"] = 1
        extra[f"{split}.txt {'characters' if newline else 'bytes'}"] = length
    from toolkit.data.manifest import Rejections

    Rejections().write(out / "rejected.tsv")
    result = Result(corpus, str(out), counts, {}, {}, [f"{s}.txt" for s in SPLITS] + ["rejected.tsv"], extra,
                    unit="line(s)")
    mark_done(result, key)
    return result
