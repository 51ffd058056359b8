"""CTC beam search with torchaudio's flashlight decoder: lexicon-free or with a lexicon, with no LM,
a KenLM (ARPA or binary) model, or the toolkit's own recurrent LM by shallow fusion."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from toolkit.data.io import atomic_open
from toolkit.errors import UserError

from .fusion_lm import FlashlightLMBridge, FusionLM

BLANK = "<blank>"
WORD_SEP = "|"


@dataclass
class BeamConfig:
    beam_size: int = 16
    beam_size_token: int | None = None  # tokens considered per frame (None: all)
    beam_threshold: float = 25.0
    lm_weight: float = 0.5
    word_score: float = 0.0
    nbest: int = 1


def write_lexicon(words: Iterable[str], path: str | os.PathLike) -> Path:
    """A flashlight lexicon (``word<TAB>c h a r s |``) for character tokens."""
    with atomic_open(path) as f:
        for w in sorted(set(words)):
            if w:
                f.write(f"{w}\t{' '.join(w)} {WORD_SEP}\n")
    return Path(path)


class CTCBeamSearch:
    """Beam search over CTC log-probabilities.

    ``symbols[i]`` is the text of output index i (index 0 the blank); the symbol that separates
    words (a space for character models) is ``word_sep`` and is handed to flashlight as its
    silence token. ``lm`` is ``None``, a KenLM file path, or a :class:`FusionLM` together with
    ``lm_token_ids`` (decoder index -> LM token id, ``None`` for no LM cost) and ``lm_end_id``.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        word_sep: str | None = " ",
        lexicon: str | os.PathLike | None = None,
        lm: str | os.PathLike | FusionLM | None = None,
        lm_token_ids: Sequence[int | None] | None = None,
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
        self.bridge = None
        lm_arg: object = None
        if isinstance(lm, FusionLM):
            if lm_token_ids is None:
                raise ValueError("lm_token_ids is required with a FusionLM")
            ids = list(lm_token_ids) + [None] * (len(tokens) - len(lm_token_ids))
            self.bridge = FlashlightLMBridge(lm, lambda i: ids[i], lm_end_id)
            lm_arg = self.bridge
        elif lm is not None:
            if not Path(lm).is_file():
                raise UserError(f"language model not found: {lm}")
            lm_arg = str(lm)
        if lexicon is not None and not Path(lexicon).is_file():
            raise UserError(f"lexicon not found: {lexicon}")
        c = self.config
        self.decoder = ctc_decoder(
            lexicon=str(lexicon) if lexicon is not None else None,
            tokens=tokens,
            lm=lm_arg,
            nbest=c.nbest,
            beam_size=c.beam_size,
            beam_size_token=c.beam_size_token,
            beam_threshold=c.beam_threshold,
            lm_weight=c.lm_weight if lm_arg is not None else 0.0,
            word_score=c.word_score,
            blank_token=BLANK,
            sil_token=WORD_SEP,
            unk_word="<unk>",
        )

    def __call__(self, log_probs: Tensor, lengths: Tensor | None = None) -> list[str]:
        """log_probs: (B, T, V) -> one transcript per utterance (the best hypothesis)."""
        emissions = log_probs.detach().float().cpu().contiguous()
        if emissions.shape[-1] < len(self.tokens):  # the silence token the model does not have
            pad = emissions.new_full((*emissions.shape[:2], len(self.tokens) - emissions.shape[-1]), -1e4)
            emissions = torch.cat([emissions, pad], dim=-1)
        results = self.decoder(emissions, lengths.cpu().int() if lengths is not None else None)
        out = []
        for hyps in results:
            if not hyps:
                out.append("")
                continue
            best = hyps[0]
            if best.words:
                out.append(" ".join(best.words))
            else:
                text = "".join(self.tokens[i] for i in best.tokens.tolist() if self.tokens[i] != BLANK)
                text = text.replace(WORD_SEP, " ").replace("\u2581", " ")  # "▁": sentencepiece word start
                out.append(" ".join(text.split()))
        return out
