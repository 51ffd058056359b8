"""Tokenizers: characters, words, bytes and sentencepiece (BPE or unigram), trained from text.

Every tokenizer shares the first ids: 0 ``<blank>`` (CTC blank and padding), 1 ``<unk>``, 2 ``<eos>``.
A tokenizer is saved as ``tokenizer.json`` (plus ``tokenizer.model`` for sentencepiece) in the
experiment folder and loaded back from it with ``load_tokenizer``. ``to_state`` / ``tokenizer_from_state``
give the same contents as one plain dict, which a checkpoint carries so a model needs no tokenizer folder.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

from toolkit.data.io import atomic_open, write_json
from toolkit.data.text import normalize_text
from toolkit.errors import UserError

BLANK, UNK, EOS = "<blank>", "<unk>", "<eos>"
SPECIALS = (BLANK, UNK, EOS)
KINDS = ("char", "word", "byte", "bpe", "unigram")


class Tokenizer:
    """Common interface: ``encode(text) -> ids``, ``decode(ids) -> text``, ``unknown(text)``."""

    kind = "base"
    blank_id, unk_id, eos_id = 0, 1, 2

    def __init__(self, lowercase: bool = False, remove_punct: bool = False) -> None:
        self.lowercase, self.remove_punct = lowercase, remove_punct

    def normalize(self, text: str) -> str:
        return normalize_text(text, self.lowercase, self.remove_punct)

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str, eos: bool = False) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def unknown(self, text: str) -> list[str]:
        """Symbols of ``text`` the tokenizer cannot represent (empty when it encodes faithfully)."""
        return []

    def _config(self) -> dict:
        return {"kind": self.kind, "lowercase": self.lowercase, "remove_punct": self.remove_punct}

    def to_state(self) -> dict:
        """Everything that defines the tokenizer, as plain values (see :func:`tokenizer_from_state`)."""
        return self._config()

    def save(self, folder: str | os.PathLike) -> Path:
        raise NotImplementedError


class SymbolTokenizer(Tokenizer):
    """A fixed symbol table; ``char`` splits into characters (space is a symbol), ``word`` on spaces."""

    def __init__(self, symbols: Sequence[str], kind: str = "char", lowercase: bool = False,
                 remove_punct: bool = False) -> None:
        super().__init__(lowercase, remove_punct)
        if kind not in ("char", "word"):
            raise ValueError(f"SymbolTokenizer kind must be char or word, got {kind!r}")
        self.kind = kind
        body = [s for s in symbols if s not in SPECIALS]
        if len(set(body)) != len(body):
            raise ValueError("duplicate symbols in the vocabulary")
        self.symbols = list(SPECIALS) + body
        self.index = {s: i for i, s in enumerate(self.symbols)}

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def split(self, text: str) -> list[str]:
        text = self.normalize(text)
        return list(text) if self.kind == "char" else text.split()

    def encode(self, text: str, eos: bool = False) -> list[int]:
        ids = [self.index.get(s, self.unk_id) for s in self.split(text)]
        return ids + [self.eos_id] if eos else ids

    def decode(self, ids: Iterable[int]) -> str:
        out = [self.symbols[i] for i in ids if 0 <= i < len(self.symbols) and i != self.blank_id and i != self.eos_id]
        return "".join(out) if self.kind == "char" else " ".join(out)

    def unknown(self, text: str) -> list[str]:
        return sorted({s for s in self.split(text) if s not in self.index})

    def to_state(self) -> dict:
        return {**self._config(), "symbols": self.symbols}

    def save(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / "tokenizer.json"
        write_json(path, self.to_state())
        return path


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes (enwik8 style): id = byte + 3, so any text encodes and nothing is unknown."""

    kind = "byte"

    def __init__(self) -> None:
        super().__init__(False, False)

    @property
    def vocab_size(self) -> int:
        return 256 + len(SPECIALS)

    def encode(self, text: str | bytes, eos: bool = False) -> list[int]:
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        ids = [b + len(SPECIALS) for b in data]
        return ids + [self.eos_id] if eos else ids

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i - len(SPECIALS) for i in ids if i >= len(SPECIALS)).decode("utf-8", "replace")

    def save(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / "tokenizer.json"
        write_json(path, self._config())
        return path


class SentencePieceTokenizer(Tokenizer):
    """A sentencepiece model (BPE or unigram) whose ids 0/1/2 are ``<blank>``/``<unk>``/``<eos>``."""

    def __init__(self, model_proto: bytes, kind: str, lowercase: bool = False, remove_punct: bool = False) -> None:
        import sentencepiece as spm

        super().__init__(lowercase, remove_punct)
        self.kind = kind
        self.proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str, eos: bool = False) -> list[int]:
        ids = self.sp.encode(self.normalize(text))
        return ids + [self.eos_id] if eos else ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids if i > self.eos_id])

    def unknown(self, text: str) -> list[str]:
        pieces = self.sp.encode(self.normalize(text), out_type=str)
        ids = self.sp.piece_to_id(pieces) if pieces else []
        bad = {p.lstrip("\u2581") for p, i in zip(pieces, ids, strict=True) if i == self.unk_id}
        return sorted(bad)

    def pieces(self, text: str) -> list[str]:
        return self.sp.encode(self.normalize(text), out_type=str)

    @cached_property
    def symbols(self) -> list[str]:
        """The text of every id: the three specials, then the pieces ("\u2581" marks a word start)."""
        return list(SPECIALS) + [self.sp.id_to_piece(i) for i in range(len(SPECIALS), self.vocab_size)]

    @cached_property
    def index(self) -> dict[str, int]:
        """Piece text -> id (the inverse of ``symbols``)."""
        return {s: i for i, s in enumerate(self.symbols)}

    def to_state(self) -> dict:
        return {**self._config(), "model_proto": self.proto}

    def save(self, folder: str | os.PathLike) -> Path:
        folder = Path(folder)
        with atomic_open(folder / "tokenizer.model", "wb") as f:
            f.write(self.proto)
        path = folder / "tokenizer.json"
        write_json(path, {**self._config(), "model": "tokenizer.model", "vocab_size": self.vocab_size})
        return path


def train_tokenizer(
    kind: str,
    texts: Iterable[str],
    vocab_size: int | None = None,
    min_count: int = 1,
    lowercase: bool = False,
    remove_punct: bool = False,
    character_coverage: float = 1.0,
) -> Tokenizer:
    """Build a tokenizer of ``kind`` from ``texts``.

    char/word: the symbols seen at least ``min_count`` times, most frequent first, at most
    ``vocab_size`` of them (the rest map to ``<unk>``). bpe/unigram: a sentencepiece model of at most
    ``vocab_size`` pieces (a soft limit, so small corpora still train); one trainer thread, so the
    same text gives the same model.
    """
    if kind not in KINDS:
        raise UserError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "byte":
        return ByteTokenizer()
    norm = [normalize_text(t, lowercase, remove_punct) for t in texts]
    norm = [t for t in norm if t]
    if not norm:
        raise UserError("no text to train the tokenizer on: the manifest or text file is empty")
    if kind in ("char", "word"):
        counts: Counter = Counter()
        for t in norm:
            counts.update(list(t) if kind == "char" else t.split())
        # ties broken by symbol so the table does not depend on the order texts arrive in
        ranked = sorted((s for s, c in counts.items() if c >= min_count and s not in SPECIALS),
                        key=lambda s: (-counts[s], s))
        if vocab_size is not None:
            ranked = ranked[: max(0, vocab_size - len(SPECIALS))]
        if kind == "char":
            ranked.sort()
        return SymbolTokenizer(ranked, kind, lowercase, remove_punct)
    return _train_sentencepiece(kind, norm, vocab_size or 256, lowercase, remove_punct, character_coverage)


def _train_sentencepiece(kind, texts, vocab_size, lowercase, remove_punct, coverage) -> Tokenizer:
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, model_type=kind, vocab_size=vocab_size,
            character_coverage=coverage, hard_vocab_limit=False, pad_id=0, pad_piece=BLANK, unk_id=1,
            unk_piece=UNK, eos_id=2, eos_piece=EOS, bos_id=-1, num_threads=1,
            minloglevel=2, normalization_rule_name="identity",
        )
    except RuntimeError as err:
        raise UserError(f"sentencepiece could not train a {kind} model of {vocab_size} pieces: {err}") from None
    return SentencePieceTokenizer(model.getvalue(), kind, lowercase, remove_punct)


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load from an experiment folder or a ``tokenizer.json`` file."""
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
        kind = cfg["kind"]
    except FileNotFoundError:
        raise UserError(f"tokenizer {path} not found: train one first (the tokenizer stage)") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise UserError(f"tokenizer {path} is unreadable ({err}); delete it and train again") from None
    if kind in ("bpe", "unigram"):
        model = path.parent / cfg.get("model", "tokenizer.model")
        if not model.is_file():
            raise UserError(f"sentencepiece model {model} is missing beside {path}; train the tokenizer again")
        cfg = {**cfg, "model_proto": model.read_bytes()}
    return tokenizer_from_state(cfg, str(path))


def tokenizer_from_state(state: dict, where: str = "checkpoint") -> Tokenizer:
    """The tokenizer that ``Tokenizer.to_state`` described (``where`` names its source in errors)."""
    kind = state.get("kind")
    opts = {"lowercase": bool(state.get("lowercase")), "remove_punct": bool(state.get("remove_punct"))}
    try:
        if kind in ("char", "word"):
            return SymbolTokenizer(state["symbols"], kind, **opts)
        if kind == "byte":
            return ByteTokenizer()
        if kind in ("bpe", "unigram"):
            return SentencePieceTokenizer(state["model_proto"], kind, **opts)
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{where}: the tokenizer is unreadable ({err})") from None
    raise UserError(f"{where}: unknown tokenizer kind {kind!r}")
