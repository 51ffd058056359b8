"""CTC beam search with torchaudio's flashlight decoder: lexicon-free or with a lexicon, with no LM,
a KenLM (ARPA or binary) model, or the toolkit's own recurrent LM by shallow fusion."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from toolkit.data.io import atomic_open, write_text
from toolkit.errors import UserError

from .fusion_lm import FlashlightLMBridge, FusionLM

BLANK = "<blank>"
WORD_SEP = "|"
UNK_WORD = "<unk>"


@dataclass
class BeamConfig:
    beam_size: int = 16
    beam_size_token: int | None = None  # tokens considered per frame (None: all)
    beam_threshold: float = 25.0
    lm_weight: float = 0.5
    word_score: float = 0.0
    nbest: int = 1


def char_spelling(word: str, separator: bool = True) -> list[str]:
    """A word spelled in characters, then the word separator (the lexicon form for char models).
    ``separator=False`` for a model that has no separator to emit (trained on one-word utterances):
    a spelling that needs it could never be completed."""
    return [*word, WORD_SEP] if separator else list(word)


def write_lexicon(
    words: Iterable[str], path: str | os.PathLike, spell: Callable[[str], list[str] | None] = char_spelling
) -> Path:
    """A flashlight lexicon, ``word<TAB>t o k e n s`` per line; ``spell(word)`` gives the tokens
    (characters by default; e.g. sentencepiece pieces), or ``None`` for a word the model cannot spell,
    which is left out."""
    with atomic_open(path) as f:
        for w in sorted(set(words)):
            tokens = spell(w) if w else None
            if tokens:
                f.write(f"{w}\t{' '.join(tokens)}\n")
    return Path(path)


def lexicon_words(path: str | os.PathLike) -> list[str]:
    """The words of a lexicon file, in file order, each once."""
    seen: dict[str, None] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields:
                seen.setdefault(fields[0], None)
    return list(seen)


class CTCBeamSearch:
    """Beam search over CTC log-probabilities.

    ``symbols[i]`` is the text of output index i (index 0 the blank); the symbol that separates
    words (a space for character models) is ``word_sep`` and is handed to flashlight as its
    silence token; ``None`` when every token is a word (word or phone models). ``lm`` is ``None``,
    a KenLM file path, or a :class:`FusionLM` with ``lm_vocab`` (its token text -> id), scored by
    shallow fusion:

    * without a lexicon, per decoder token: a character or sentencepiece LM whose symbols include
      the model's (a symbol the LM lacks costs nothing);
    * with a lexicon, per word: a word LM; a lexicon word outside ``lm_vocab`` is scored as
      ``lm_unk_id``.

    ``lm_end_id`` (the LM's end of sentence) is scored when a hypothesis ends.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        word_sep: str | None = " ",
        lexicon: str | os.PathLike | None = None,
        lm: str | os.PathLike | FusionLM | None = None,
        lm_vocab: Mapping[str, int] | None = None,
        lm_unk_id: int | None = None,
        lm_end_id: int | None = None,
        config: BeamConfig | None = None,
    ):
        from torchaudio.models.decoder import ctc_decoder

        self.config = config or BeamConfig()
        self.word_sep = word_sep
        tokens = [BLANK, *[WORD_SEP if s == word_sep else s for s in symbols[1:]]]
        if WORD_SEP not in tokens:
            tokens.append(WORD_SEP)  # flashlight needs a silence token even if the model has none
        self.tokens = tokens
        self.lexicon = lexicon
        if lexicon is not None and not Path(lexicon).is_file():
            raise UserError(f"lexicon not found: {lexicon}")
        self.bridge = None
        lm_arg: object = None
        lm_dict: str | None = None
        with tempfile.TemporaryDirectory() as tmp:
            if isinstance(lm, FusionLM):
                if lm_vocab is None:
                    raise ValueError("lm_vocab is required with a FusionLM")
                if lexicon is None:
                    # decoder token i is symbols[i]; the appended silence token has no LM cost
                    ids = [None] + [lm_vocab.get(s) for s in symbols[1:]] + [None] * (len(tokens) - len(symbols))
                else:
                    # flashlight numbers words by the word dictionary we hand it: lexicon order, <unk> last
                    words = lexicon_words(lexicon)
                    if UNK_WORD not in words:
                        words.append(UNK_WORD)
                    lm_dict = str(write_text(Path(tmp) / "words.txt", "\n".join(words) + "\n"))
                    ids = [lm_vocab.get(w, lm_unk_id) for w in words]
                self.bridge = FlashlightLMBridge(lm, ids.__getitem__, lm_end_id)
                lm_arg = self.bridge
            elif lm is not None:
                if not Path(lm).is_file():
                    raise UserError(f"language model not found: {lm}")
                lm_arg = str(lm)
            c = self.config
            self.decoder = ctc_decoder(
                lexicon=str(lexicon) if lexicon is not None else None,
                tokens=tokens,
                lm=lm_arg,
                lm_dict=lm_dict,
                nbest=c.nbest,
                beam_size=c.beam_size,
                beam_size_token=c.beam_size_token,
                beam_threshold=c.beam_threshold,
                lm_weight=c.lm_weight if lm_arg is not None else 0.0,
                word_score=c.word_score,
                blank_token=BLANK,
                sil_token=WORD_SEP,
                unk_word=UNK_WORD,
            )

    def __call__(self, log_probs: Tensor, lengths: Tensor | None = None) -> list[str]:
        """log_probs: (B, T, V) -> one transcript per utterance (the best hypothesis)."""
        return [hyps[0][0] if hyps else "" for hyps in self.nbest(log_probs, lengths)]

    def nbest(self, log_probs: Tensor, lengths: Tensor | None = None) -> list[list[tuple[str, float]]]:
        """log_probs: (B, T, V) -> per utterance, up to ``config.nbest`` (transcript, score) pairs, best
        first; the score is flashlight's: CTC log-likelihood + lm_weight * LM score + word_score * words."""
        emissions = log_probs.detach().float().cpu().contiguous()
        if emissions.shape[-1] < len(self.tokens):  # the silence token the model does not have
            pad = emissions.new_full((*emissions.shape[:2], len(self.tokens) - emissions.shape[-1]), -1e4)
            emissions = torch.cat([emissions, pad], dim=-1)
        results = self.decoder(emissions, lengths.cpu().int() if lengths is not None else None)
        return [[(self._text(h), float(h.score)) for h in hyps] for hyps in results]

    def _text(self, hyp) -> str:
        if self.lexicon or hyp.words:
            # with a lexicon only whole words count: a hypothesis that ends inside a word
            # (flashlight keeps those when no hypothesis ends on a word) gives just its words
            return " ".join(hyp.words)
        symbols = [self.tokens[i] for i in hyp.tokens.tolist() if self.tokens[i] != BLANK]
        # word_sep None: every token is a word (word or phone tokenizers)
        text = " ".join(symbols) if self.word_sep is None else "".join(symbols)
        text = text.replace(WORD_SEP, " ").replace("\u2581", " ")  # "▁": sentencepiece word start
        return " ".join(text.split())
