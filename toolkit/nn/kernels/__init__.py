"""Kernels for the elementwise recurrence h_t = act(a_t + u * h_{t-1}).

``elementwise_recurrence`` picks the fastest available implementation for the tensors given.
"""

from __future__ import annotations

from torch import Tensor

from .cpu import elementwise_recurrence_loop
from .reference import ACTIVATIONS, check_activation, elementwise_recurrence_reference

__all__ = [
    "ACTIVATIONS",
    "check_activation",
    "elementwise_recurrence",
    "elementwise_recurrence_loop",
    "elementwise_recurrence_reference",
]


def elementwise_recurrence(a: Tensor, u: Tensor, h0: Tensor, activation: str = "relu") -> Tensor:
    """a: (B, T, H), u: (H,), h0: (B, H) -> h: (B, T, H)."""
    return elementwise_recurrence_loop(a, u, h0, activation)
