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


STANDARD_SIZE = 100_000_000  # text8 and enwik8: 90M / 5M / 5M
STANDARD_HELD_OUT = 5_000_000


def prepare_byte_split(corpus: str, src: str | os.PathLike, out: str | os.PathLike, valid: int, test: int,
                       force: bool, newline: bool):
    """text8 / enwik8: cut the single file ``src/<corpus>`` into train | valid | test by byte offsets.

    The last ``test`` bytes are test and the ``valid`` before them valid, copied exactly (with a
    newline after each when ``newline``). With the standard sizes the file must be exactly 100M bytes.
    """
    from data_prep.common import Result, already_done, copy_bytes, mark_done, options_key, require_dir
    from toolkit.data.manifest import Rejections

    src = require_dir(src, corpus, f"unzip {corpus}.zip there, or use --download")
    key = options_key(corpus, src, {"valid": valid, "test": test})
    if done := already_done(out, key, force):
        return done
    path = find_file(src, [corpus], f"--src must hold the {corpus} file")
    size = path.stat().st_size
    if (valid, test) == (STANDARD_HELD_OUT, STANDARD_HELD_OUT) and size != STANDARD_SIZE:
        raise UserError(f"{path} has {size:,} bytes, expected {STANDARD_SIZE:,}: is it the original, complete file?")
    if valid < 0 or test < 0 or valid + test >= size:
        raise UserError(f"--valid {valid} + --test {test} must be smaller than the file ({size:,} bytes)")
    out = Path(out)
    ranges = {"train": (0, size - valid - test), "valid": (size - valid - test, valid), "test": (size - test, test)}
    counts, extra = {}, {}
    for split, (start, length) in ranges.items():
        copy_bytes(path, out / f"{split}.txt", start, length, suffix=b"\n" if newline else b"")
        counts[f"{split}.txt"] = 1
        extra[f"{split}.txt {'characters' if newline else 'bytes'}"] = length
    Rejections().write(out / "rejected.tsv")
    result = Result(corpus, str(out), counts, {}, {}, [f"{s}.txt" for s in SPLITS] + ["rejected.tsv"], extra,
                    unit="line(s)")
    mark_done(result, key)
    return result


def add_split_arguments(parser, unit: str) -> None:
    """``--valid`` / ``--test`` sizes of a byte split (text8, enwik8)."""
    parser.add_argument("--valid", type=int, default=STANDARD_HELD_OUT, help=f"{unit} of valid (default: 5M)")
    parser.add_argument("--test", type=int, default=STANDARD_HELD_OUT,
                        help=f"{unit} of test, the last ones (default: 5M)")
