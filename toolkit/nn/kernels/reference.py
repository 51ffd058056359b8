"""Reference form of the elementwise recurrence, written as the equation reads (for tests)."""

from __future__ import annotations

import torch
from torch import Tensor

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda v: v}


def check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")


def elementwise_recurrence_reference(a: Tensor, u: Tensor, h0: Tensor, activation: str = "relu") -> Tensor:
    """h_t = act(a_t + u * h_{t-1}), one step at a time.

    a: (B, T, H) input contributions, u: (H,) recurrent weights, h0: (B, H) -> h: (B, T, H).
    """
    check_activation(activation)
    act = ACTIVATIONS[activation]
    h = h0
    out = []
    for t in range(a.shape[1]):
        h = act(a[:, t] + u * h)
        out.append(h)
    return torch.stack(out, dim=1)
