"""Text normalisation shared by tokenizers, preparation and scoring, and robust text-file reading."""

from __future__ import annotations

import os
import re
import unicodedata

from toolkit.errors import UserError

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


def read_references(path: str | os.PathLike) -> dict[str, str]:
    """Reference transcripts by utterance id from ``id<TAB>text`` (TSV) or Kaldi ``text`` (``id text``)
    lines; blank lines are skipped, a line with an id and no text is an empty reference."""
    lines, bad = read_lines(path)
    if bad:
        raise UserError(f"{path}: line {bad[0][0]} is not UTF-8 text ({bad[0][1]})")
    refs: dict[str, str] = {}
    for line in lines:
        if line.strip():
            uid, _, text = line.strip().partition("\t") if "\t" in line else line.strip().partition(" ")
            refs[uid.strip()] = text.strip()
    return refs
