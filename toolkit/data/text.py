"""Text normalisation shared by tokenizers, preparation and scoring, and robust text-file reading."""

from __future__ import annotations

import os
import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s'<>]|_", re.UNICODE)


def normalize_text(text: str, lowercase: bool = False, remove_punct: bool = False) -> str:
    """NFC-normalise, optionally lowercase and drop punctuation (apostrophes kept), squeeze spaces."""
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    if remove_punct:
        text = _PUNCT.sub(" ", text)
    return " ".join(text.split())


def read_lines(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, str]]]:
    """Lines of a UTF-8 text file (newline stripped) and ``[(line number, reason)]`` for undecodable ones.

    A line that is not UTF-8 is left out and reported rather than failing the whole file.
    """
    good, bad = [], []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                good.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError:
                bad.append((lineno, "not UTF-8"))
    return good, bad


def read_transcript(path: str | os.PathLike) -> str:
    """Whole-file transcript; raises ValueError("not UTF-8") or ("empty transcript")."""
    data = open(path, "rb").read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 transcript") from None
    text = " ".join(text.split())
    if not text:
        raise ValueError("empty transcript")
    return text
