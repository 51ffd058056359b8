"""Decoding settings and the decoder they build: greedy, beam search with KenLM or a recur LM fused,
a lexicon, n-best rescoring by a recur LM. ``recur decode``'s options map one to one onto
:class:`DecodeOptions`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from toolkit.decode.beam import BeamConfig, CTCBeamSearch, char_spelling, write_lexicon
from toolkit.decode.rescore import NBestRescorer
from toolkit.errors import UserError

from .loading import load_task


@dataclass
class DecodeOptions:
    """How to turn a CTC model's log-probabilities into text.

    beam: beam size; 0 decodes greedily. beam_tokens: tokens considered per frame.
    lm: a KenLM file (.arpa / .bin) or a recur LM (experiment folder or .ckpt) fused into the beam search
        with ``lm_weight``; ``word_score`` is added per word. lexicon: words the search may output,
        spelled in the model's tokens (default with an ARPA or word LM: the LM's words).
    blank_penalty: subtracted from the blank's log-probability on every frame (greedy or beam).
    rescore_lm: a recur LM re-ranking the beam's ``nbest`` hypotheses: first-pass score +
        ``rescore_weight`` x the LM's sentence log-probability + ``rescore_word_score`` per word.
    """

    beam: int = 0
    beam_tokens: int = 8
    lm: str | None = None
    lm_weight: float = 0.5
    word_score: float = 0.0
    lexicon: str | None = None
    blank_penalty: float = 0.0
    rescore_lm: str | None = None
    rescore_weight: float = 0.5
    rescore_word_score: float = 0.0
    nbest: int = 100

    def check(self) -> None:
        """Refuse inconsistent settings in one line each."""
        if self.beam < 0:
            raise UserError(f"--beam must be 0 (greedy) or a positive beam size, not {self.beam}")
        if self.beam_tokens < 1:
            raise UserError(f"--beam-tokens must be at least 1, not {self.beam_tokens}")
        if self.lm and not self.beam:
            raise UserError("--lm needs beam search: add --beam N (e.g. --beam 16)")
        if self.rescore_lm and not self.beam:
            raise UserError("--rescore-lm re-ranks a beam search's n-best list: add --beam N (e.g. --beam 500)")
        if self.nbest < 1:
            raise UserError(f"--nbest must be at least 1, not {self.nbest}")
        for flag, path in (("--lm", self.lm), ("--lexicon", self.lexicon), ("--rescore-lm", self.rescore_lm)):
            if path and not Path(path).exists():
                raise UserError(f"{flag} {path}: no such file or folder")
        if self.lm and not is_recur_lm(self.lm) and Path(self.lm).suffix != ".bin" and not _is_arpa(Path(self.lm)):
            raise UserError(
                f"--lm {self.lm}: not an ARPA language model (no \\data\\ header), a KenLM .bin or a recur LM "
                "(experiment folder or .ckpt); build an ARPA one with recur ngram"
            )

    @property
    def tag(self) -> str:
        """The suffix naming these settings in scoring folders and metrics.json (e.g. ``_beam8_kenlm``)."""
        tag = f"_beam{self.beam}" if self.beam else ""
        if self.lm:
            tag += "_rnnlm" if is_recur_lm(self.lm) else "_kenlm"
        if self.rescore_lm:
            tag += "_rescored"
        if self.blank_penalty:
            tag += f"_bp{self.blank_penalty:g}"
        return tag


def is_recur_lm(path: str | os.PathLike) -> bool:
    """A recur LM (experiment folder or checkpoint), as opposed to a KenLM file (ARPA or binary)."""
    return Path(path).is_dir() or Path(path).suffix == ".ckpt"


def _is_arpa(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                return line.strip() == "\\data\\"
    return False


def arpa_words(path: Path) -> list[str]:
    """The words of an ARPA file's unigram section (``<s>`` and the like left out)."""
    words, in_unigrams = [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif line.startswith("\\"):
                if in_unigrams:
                    break
            elif in_unigrams and line:
                w = line.split()[1]
                if not w.startswith("<"):
                    words.append(w)
    return words


def spelling(tokenizer, symbols: list[str]) -> Callable[[str], list[str] | None]:
    """word -> the model's tokens for it (characters + word separator, or sentencepiece pieces),
    or None when the model cannot spell it."""
    known = set(symbols[1:])
    if tokenizer.kind == "char":
        separator = " " in known
        return lambda w: char_spelling(w, separator) if set(w) <= known else None
    if tokenizer.kind == "word":
        return lambda w: [w] if w in known else None

    def pieces(word: str) -> list[str] | None:
        p = tokenizer.pieces(word)
        return p if p and all(x in known for x in p) else None

    return pieces


def build_decoder(tokenizer, options: DecodeOptions, device: str = "cpu", lexicon_dir: Path | None = None):
    """The decoder ``(log_probs (B, T, V), lengths (B,)) -> list[str]`` for ``options``; None for greedy.

    A lexicon made from an LM's words is written to ``<lexicon_dir>/decode/lexicon.<lm>.txt``
    (default: beside the LM)."""
    options.check()
    if options.beam <= 0:
        return None
    symbols = getattr(tokenizer, "symbols", None)
    if symbols is None:
        raise UserError(f"beam search over {tokenizer.kind} tokens is not supported; decode greedily (no --beam)")
    spell = spelling(tokenizer, symbols)
    word_sep = None if tokenizer.kind == "word" else " "
    config = BeamConfig(
        options.beam,
        options.beam_tokens,
        lm_weight=options.lm_weight,
        word_score=options.word_score,
        nbest=options.nbest if options.rescore_lm else 1,
    )

    def lexicon_from(words: list[str]) -> Path:
        if options.lexicon:
            return Path(options.lexicon)
        target = (lexicon_dir or Path(options.lm).parent) / "decode" / f"lexicon.{Path(options.lm).stem}.txt"
        return write_lexicon(words, target, spell)

    if options.lm and is_recur_lm(options.lm):
        lm = load_task(options.lm, device, expect="lm")
        tok = lm.tokenizer
        index = getattr(tok, "index", None)
        if index is None:
            raise UserError(f"--lm {options.lm}: a {tok.kind} LM cannot be fused; use a word, char or sentencepiece LM")
        fusion = dict(lm=lm, lm_vocab=index, lm_unk_id=tok.unk_id, lm_end_id=tok.eos_id, config=config)
        if tok.kind == "word":
            # a word LM scores whole words: the decoder needs a lexicon spelling them in the model's tokens
            lexicon = lexicon_from([w for w in tok.symbols[3:] if w != "<unk>"])
            search = CTCBeamSearch(symbols, word_sep=word_sep, lexicon=lexicon, **fusion)
        else:
            missing = [s for s in symbols[1:] if s not in index and s != "<unk>"]
            if missing:
                raise UserError(
                    f"--lm {options.lm}: the LM has no symbol for {missing[:5]}; fuse an LM over the model's own "
                    f"{tokenizer.kind} tokens (same tokenizer), or a word LM"
                )
            search = CTCBeamSearch(symbols, word_sep=word_sep, **fusion)
    else:
        lexicon = options.lexicon
        if options.lm and Path(options.lm).suffix != ".bin" and lexicon is None:
            lexicon = lexicon_from(arpa_words(Path(options.lm)))
        search = CTCBeamSearch(symbols, word_sep=word_sep, lexicon=lexicon, lm=options.lm, config=config)
    if not options.rescore_lm:
        return search
    rescorer = load_task(options.rescore_lm, device, expect="lm")
    tok = rescorer.tokenizer
    return NBestRescorer(search, rescorer, tok.encode, tok.eos_id, options.rescore_weight, options.rescore_word_score)
