"""CTC beam search with flashlight-text directly (no PyTorch): the same decoder ``recur decode --beam``
builds through torchaudio (``toolkit.decode.beam.CTCBeamSearch``), lexicon-free or with a lexicon, with no
LM or a KenLM model (ARPA or binary), so the same options give the same transcripts.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import numpy as np

BLANK = "<blank>"
WORD_SEP = "|"
UNK_WORD = "<unk>"


@dataclass
class BeamOptions:
    """The beam options of ``recur decode`` (``toolkit.api.DecodeOptions``): ``beam`` hypotheses kept,
    ``beam_tokens`` tokens tried per frame, ``lm_weight`` and ``word_score`` with an LM, ``blank_penalty``
    (applied by the caller to the log-probabilities, greedy or beam)."""

    beam: int = 0
    beam_tokens: int = 8
    lm_weight: float = 0.5
    word_score: float = 0.0
    blank_penalty: float = 0.0
    beam_threshold: float = 25.0


class BeamSearch:
    """``symbols[i]`` is output i's text (0 the blank); ``word_sep`` the symbol that separates words (" " for
    character and sentencepiece models, None when every token is a word); ``lexicon`` a flashlight lexicon
    (``word<TAB>t o k e n s``), ``lm`` a KenLM file. ``__call__(log_probs (T, V)) -> text``; ``begin``,
    ``step`` and ``best`` / ``end`` decode a stream incrementally (the same search, frame by frame)."""

    def __init__(self, symbols: list[str], options: BeamOptions, word_sep: str | None = " ",
                 lexicon: str | os.PathLike | None = None, lm: str | os.PathLike | None = None) -> None:
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconDecoder,
            LexiconDecoderOptions,
            LexiconFreeDecoder,
            LexiconFreeDecoderOptions,
            SmearingMode,
            Trie,
            ZeroLM,
        )
        from flashlight.lib.text.dictionary import Dictionary, create_word_dict, load_words

        self.word_sep = word_sep
        tokens = [BLANK, *[WORD_SEP if s == word_sep else s for s in symbols[1:]]]
        if WORD_SEP not in tokens:
            tokens.append(WORD_SEP)  # flashlight needs a silence token even if the model has none
        self.tokens, self.vocab = tokens, len(symbols)
        self.lexicon = str(lexicon) if lexicon else None
        self.uses_lm = lm is not None
        token_dict = Dictionary(tokens)
        self.blank = token_dict.get_index(BLANK)
        silence = token_dict.get_index(WORD_SEP)
        words = load_words(self.lexicon) if self.lexicon else None
        self.word_dict = None
        if words:
            self.word_dict = create_word_dict(words)
        elif lm is not None:  # a token-level KenLM
            entries = {token_dict.get_entry(i): [[token_dict.get_entry(i)]] for i in range(token_dict.index_size())}
            entries[UNK_WORD] = [[UNK_WORD]]
            self.word_dict = create_word_dict(entries)
        if lm is not None:
            from flashlight.lib.text.decoder.kenlm import KenLM

            self.lm = KenLM(str(lm), self.word_dict)
        else:
            self.lm = ZeroLM()
        lm_weight = options.lm_weight if lm is not None else 0.0
        if words:
            trie = Trie(token_dict.index_size(), silence)
            start = self.lm.start(False)
            for word, spellings in words.items():
                index = self.word_dict.get_index(word)
                _, score = self.lm.score(start, index)
                for spelling in spellings:
                    trie.insert([token_dict.get_index(t) for t in spelling], index, score)
            trie.smear(SmearingMode.MAX)
            self.trie = trie  # the decoder keeps a reference only
            opts = LexiconDecoderOptions(
                beam_size=options.beam, beam_size_token=options.beam_tokens, beam_threshold=options.beam_threshold,
                lm_weight=lm_weight, word_score=options.word_score, unk_score=float("-inf"), sil_score=0.0,
                log_add=False, criterion_type=CriterionType.CTC,
            )  # fmt: skip
            unk = self.word_dict.get_index(UNK_WORD)
            self.decoder = LexiconDecoder(opts, trie, self.lm, silence, self.blank, unk, [], False)
        else:
            opts = LexiconFreeDecoderOptions(
                beam_size=options.beam, beam_size_token=options.beam_tokens, beam_threshold=options.beam_threshold,
                lm_weight=lm_weight, sil_score=0.0, log_add=False, criterion_type=CriterionType.CTC,
            )  # fmt: skip
            self.decoder = LexiconFreeDecoder(opts, self.lm, silence, self.blank, [])

    def _emissions(self, log_probs: np.ndarray) -> np.ndarray:
        e = np.ascontiguousarray(log_probs, dtype=np.float32)
        if e.shape[-1] < len(self.tokens):  # the silence token the model does not have
            e = np.concatenate([e, np.full((e.shape[0], len(self.tokens) - e.shape[-1]), -1e4, np.float32)], 1)
        return np.ascontiguousarray(e)

    def __call__(self, log_probs: np.ndarray) -> str:
        e = self._emissions(log_probs)
        results = self.decoder.decode(e.ctypes.data, e.shape[0], e.shape[1])
        return self._text(results[0]) if results else ""

    def begin(self) -> None:
        self.decoder.decode_begin()

    def step(self, log_probs: np.ndarray) -> None:
        if log_probs.shape[0]:
            e = self._emissions(log_probs)
            self.decoder.decode_step(e.ctypes.data, e.shape[0], e.shape[1])

    def best(self) -> str:
        """The best hypothesis so far (a partial result)."""
        return self._text(self.decoder.get_best_hypothesis())

    def end(self) -> str:
        self.decoder.decode_end()
        results = self.decoder.get_all_final_hypothesis()
        return self._text(results[0]) if results else ""

    def _text(self, result) -> str:
        words = [self.word_dict.get_entry(x) for x in result.words if x >= 0] if self.word_dict else []
        if self.lexicon or words:
            return " ".join(words)
        ids = (g for g, _ in itertools.groupby(result.tokens))
        symbols = [self.tokens[i] for i in ids if i != self.blank and self.tokens[i] != BLANK]
        text = " ".join(symbols) if self.word_sep is None else "".join(symbols)
        text = text.replace(WORD_SEP, " ").replace("\u2581", " ")
        return " ".join(text.split())

