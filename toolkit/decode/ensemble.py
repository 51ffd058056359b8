"""Posterior fusion of several CTC models: one decoder reads the combined frame posteriors.

Models trained on the same tokens and frame rate make different errors; their per-frame output
distributions are combined before decoding, so greedy and beam search (with or without a lexicon and
LM) work on the ensemble unchanged. Frame fusion needs the models to emit each token on the same
frames: in practice models of one architecture (seeds, checkpoints). A bidirectional res_indrnn and
LSTM of the LJSpeech phone recipe spike on different frames, and fused they drop phones (see README).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from toolkit.errors import UserError

FUSIONS = ("prob", "logprob")


class CTCEnsemble(nn.Module):
    """Several CTC models as one: ``forward`` returns their fused log-posteriors.

    ``fusion="prob"``: log of the mean of the models' probabilities,
    log p(k | x, t) = log (1/M) sum_m p_m(k | x, t);
    ``fusion="logprob"``: the renormalised mean of their log-probabilities (a product of experts),
    log p(k | x, t) = log_softmax_k((1/M) sum_m log p_m(k | x, t)).

    Every model must share the tokenizer (same symbols, normalisation), the feature dimension, the
    sampling rate and the subsampling, so that frame t means the same in each.
    """

    def __init__(self, models: Sequence[nn.Module], fusion: Literal["prob", "logprob"] = "prob") -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        first = models[0]
        for i, m in enumerate(models[1:], start=2):
            for what, a, b in (
                ("tokenizer", first.tokenizer.to_state(), m.tokenizer.to_state()),
                ("feat_dim", first.hparams.feat_dim, m.hparams.feat_dim),
                ("sampling rate", first.sampling_rate, m.sampling_rate),
                (
                    "subsampling",
                    (first.hparams.subsampling, first.hparams.subsampling_factor),
                    (m.hparams.subsampling, m.hparams.subsampling_factor),
                ),
            ):
                if a != b:
                    raise UserError(
                        f"ensemble: model {i} differs from model 1 in its {what}; only models trained on the "
                        "same tokens, features and frame rate can be combined"
                    )
        self.models = nn.ModuleList(models)
        self.fusion = fusion
        self.tokenizer = first.tokenizer
        self.hparams = first.hparams
        self.sampling_rate = first.sampling_rate

    def forward(self, feats: Tensor, feat_lens: Tensor) -> tuple[Tensor, Tensor]:
        """feats (B, T, feat_dim) raw fbank, feat_lens (B,) -> (fused log-probs (B, T', V), lengths (B,))."""
        outputs = [m(feats, feat_lens) for m in self.models]
        lengths = outputs[0][1]
        for _, other in outputs[1:]:
            if not torch.equal(other, lengths):
                raise UserError("ensemble: the models give different numbers of output frames for the same audio")
        stacked = torch.stack([lp for lp, _ in outputs])
        if self.fusion == "prob":
            fused = torch.logsumexp(stacked, dim=0) - math.log(len(self.models))
        else:
            fused = stacked.mean(dim=0).log_softmax(dim=-1)
        return fused, lengths

    def transcribe(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        """Greedy CTC transcripts of fused log-probs."""
        return self.models[0].transcribe(log_probs, lengths)
