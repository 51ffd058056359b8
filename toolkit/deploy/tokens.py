"""The model's outputs as text: ``tokens.txt`` (one ``symbol id`` line per output, ``<space>`` standing for
the space character) and the tokenizer's kind, read back the way ``toolkit.data.tokenizer`` writes text.

Greedy CTC decoding is here too: best path, repeats merged, blanks dropped.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

SPACE = "<space>"
SPECIALS = ("<blank>", "<unk>", "<eos>")
BLANK_ID, UNK_ID, EOS_ID = 0, 1, 2
_PUNCT = re.compile(r"[^\w\s'<>]|_", re.UNICODE)


def write_tokens(symbols: Sequence[str], path: str | os.PathLike) -> Path:
    """``symbol id`` per line, in id order (``<space>`` for " ")."""
    lines = [f"{SPACE if s == ' ' else s} {i}\n" for i, s in enumerate(symbols)]
    Path(path).write_text("".join(lines), encoding="utf-8")
    return Path(path)


def read_tokens(path: str | os.PathLike) -> list[str]:
    symbols: dict[int, str] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            sym, _, index = line.rpartition(" ")
            symbols[int(index)] = " " if sym == SPACE else sym
    if sorted(symbols) != list(range(len(symbols))):
        raise ValueError(f"{path}: token ids must run 0..N-1")
    return [symbols[i] for i in range(len(symbols))]


def normalize_text(text: str, lowercase: bool = False, remove_punct: bool = False) -> str:
    """The tokenizer's normalisation (``toolkit.data.text.normalize_text``): NFC, optionally lowercase and
    punctuation (apostrophes kept) removed, spaces squeezed."""
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    if remove_punct:
        text = _PUNCT.sub(" ", text)
    return " ".join(text.split())


class TokenTable:
    """Ids -> text for a tokenizer ``kind`` (char, word, bpe, unigram, byte) over ``symbols``."""

    def __init__(self, symbols: Sequence[str], kind: str, lowercase: bool = False, remove_punct: bool = False):
        self.symbols, self.kind = list(symbols), kind
        self.lowercase, self.remove_punct = lowercase, remove_punct

    @classmethod
    def load(cls, folder: str | os.PathLike, config: dict) -> TokenTable:
        tok = config["tokenizer"]
        return cls(read_tokens(Path(folder) / tok["file"]), tok["kind"], tok["lowercase"], tok["remove_punct"])

    def normalize(self, text: str) -> str:
        return normalize_text(text, self.lowercase, self.remove_punct)

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        if self.kind == "byte":
            return bytes(i - len(SPECIALS) for i in ids if i >= len(SPECIALS)).decode("utf-8", "replace")
        if self.kind in ("bpe", "unigram"):  # sentencepiece: pieces joined, "▁" a space, no leading space
            return "".join(self.symbols[i] for i in ids if i > EOS_ID).replace("\u2581", " ").lstrip(" ")
        out = [self.symbols[i] for i in ids if 0 <= i < len(self.symbols) and i not in (BLANK_ID, EOS_ID)]
        return "".join(out) if self.kind == "char" else " ".join(out)


def lower_blank(log_probs: np.ndarray, penalty: float, blank: int = BLANK_ID) -> np.ndarray:
    """The blank's log-probability lowered by ``penalty`` on every frame (``recur decode --blank-penalty``)."""
    if not penalty:
        return log_probs
    out = np.array(log_probs, dtype=np.float32, copy=True)
    out[..., blank] -= penalty
    return out


def greedy_ids(log_probs: np.ndarray, blank: int = BLANK_ID) -> list[int]:
    """Best path of ``log_probs (T, V)``: argmax per frame, repeats merged, blanks removed."""
    best = np.asarray(log_probs).argmax(axis=-1)
    if best.size == 0:
        return []
    keep = np.ones(best.shape, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    keep &= best != blank
    return best[keep].tolist()
