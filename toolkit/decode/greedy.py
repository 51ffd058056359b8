"""Greedy (best-path) CTC decoding."""

from __future__ import annotations

import torch
from torch import Tensor


def greedy_ctc(log_probs: Tensor, lengths: Tensor | None = None, blank: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, repeats merged, blanks removed.

    log_probs: (B, T, V) scores; lengths: (B,) valid frames -> one token-id list per utterance.
    """
    best = log_probs.argmax(dim=-1)  # (B, T)
    B, T = best.shape
    lengths = torch.full((B,), T) if lengths is None else lengths.cpu()
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != blank
    out = []
    for b in range(B):
        n = int(lengths[b])
        out.append(best[b, :n][keep[b, :n]].tolist())
    return out
