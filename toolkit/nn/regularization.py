"""Regularisers for recurrent language models (Merity, Keskar, Socher 2018, "Regularizing and
Optimizing LSTM Language Models"): DropConnect on the recurrent weights and embedding dropout."""

from __future__ import annotations

import re

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

# recurrent (hidden-to-hidden) weights of every layer family in toolkit.nn
RECURRENT_WEIGHTS = re.compile(
    r"(^|\.)(weight_hh_l\d+(_reverse)?|u|recurrent(\.weight)?|gate_h\.weight|delayed\.weight)$"
)


class DropConnect(nn.Module):
    """A parametrisation: in training, each weight is zeroed with probability p (one mask per forward)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, weight: Tensor) -> Tensor:
        return F.dropout(weight, self.p, self.training)


def apply_weight_dropout(module: nn.Module, p: float) -> list[str]:
    """DropConnect with rate ``p`` on every recurrent weight inside ``module``; returns their names.

    PyTorch's fused RNNs read a cached list of their weights, so that cache is refreshed before each
    forward (the dropped weights are then what cuDNN sees).
    """
    if p <= 0:
        return []
    names = [n for n, _ in module.named_parameters() if RECURRENT_WEIGHTS.search(n)]
    for name in names:
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        parametrize.register_parametrization(owner, attr, DropConnect(p))
        if isinstance(owner, nn.RNNBase) and not getattr(owner, "_refresh_hooked", False):
            owner.register_forward_pre_hook(lambda m, args: m._init_flat_weights())
            owner._refresh_hooked = True
    return names


def embedding_dropout(embed: nn.Embedding, tokens: Tensor, p: float, training: bool) -> Tensor:
    """Look up ``tokens`` with whole words dropped: each vocabulary row is zeroed with probability p."""
    if not training or p == 0:
        return embed(tokens)
    keep = embed.weight.new_empty(embed.weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)
    return F.embedding(tokens, embed.weight * keep, embed.padding_idx)
