"""N-best rescoring: a second language model re-ranks the hypotheses of a first beam-search pass.

The first pass (e.g. beam search over a lexicon with an n-gram LM) keeps N hypotheses per utterance
with flashlight's score s_i; the second LM (any :class:`FusionLM`, e.g. the toolkit's word LSTM)
adds its sentence log-probability:

    best = argmax_i  s_i + weight * log p_LM(w_1 .. w_n, </s>) + word_score * n

which is a log-linear interpolation of the two LMs, as in ESPnet's and icefall's n-best rescoring;
``word_score`` offsets the second LM's cost per word, which otherwise favours short hypotheses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .beam import CTCBeamSearch
from .fusion_lm import FusionLM


@torch.no_grad()
def sentence_log_probs(lm: FusionLM, sentences: Sequence[Sequence[int]], end_id: int | None = None) -> Tensor:
    """Natural-log probability of each token sequence from the LM's initial state, ``end_id`` scored
    after the last token when given. The sequences are scored as one batch, shorter ones padded;
    padding never enters a score. Returns (N,)."""
    n = len(sentences)
    extra = 0 if end_id is None else 1
    lengths = torch.tensor([len(s) + extra for s in sentences])
    steps = int(lengths.max()) if n else 0
    targets = torch.zeros(n, max(steps, 1), dtype=torch.long)
    for i, s in enumerate(sentences):
        row = [*s, end_id] if end_id is not None else list(s)
        targets[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    total = torch.zeros(n, dtype=torch.float64)
    state = lm.initial_state(n)
    for t in range(steps):
        log_probs = lm.next_log_probs(state).cpu()
        live = lengths > t
        total += torch.where(live, log_probs.gather(1, targets[:, t : t + 1]).squeeze(1).double(), 0.0)
        if t + 1 < steps:
            state = lm.advance(state, targets[:, t])
    return total


class NBestRescorer:
    """A decoder (``log_probs (B, T, V), lengths -> list[str]``) that takes ``search``'s n-best
    lists (``search.config.nbest`` hypotheses) and returns, per utterance, the hypothesis with the
    highest first-pass score + ``weight`` x its sentence log-probability under ``lm`` + ``word_score``
    x its number of words.

    ``encode(text) -> token ids`` turns a hypothesis into the LM's tokens (its tokenizer's
    ``encode``); ``end_id`` is the LM's end of sentence.
    """

    def __init__(
        self,
        search: CTCBeamSearch,
        lm: FusionLM,
        encode: Callable[[str], list[int]],
        end_id: int | None,
        weight: float,
        word_score: float = 0.0,
    ):
        self.search, self.lm, self.encode, self.end_id = search, lm, encode, end_id
        self.weight, self.word_score = weight, word_score

    def rerank(self, hyps: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """(text, first-pass score) pairs -> (text, combined score), best first; each text once
        (flashlight can return one word sequence through several alignments: the best is kept)."""
        best: dict[str, float] = {}
        for text, s in hyps:
            best[text] = max(s, best.get(text, -float("inf")))
        texts = list(best)
        if not texts:
            return []
        lm = sentence_log_probs(self.lm, [self.encode(t) for t in texts], self.end_id)
        combined = [
            (t, best[t] + self.weight * float(p) + self.word_score * len(t.split()))
            for t, p in zip(texts, lm, strict=True)
        ]
        return sorted(combined, key=lambda pair: -pair[1])

    def __call__(self, log_probs: Tensor, lengths: Tensor | None = None) -> list[str]:
        out = []
        for hyps in self.search.nbest(log_probs, lengths):
            ranked = self.rerank(hyps)
            out.append(ranked[0][0] if ranked else "")
        return out
