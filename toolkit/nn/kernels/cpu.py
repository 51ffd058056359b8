"""The plain-PyTorch form of the elementwise recurrence used off the GPU."""

from __future__ import annotations

import torch
from torch import Tensor

from .reference import ACTIVATIONS, check_activation


def elementwise_recurrence_loop(a: Tensor, u: Tensor, h0: Tensor, activation: str = "relu") -> Tensor:
    """h_t = act(a_t + u * h_{t-1}); a: (B, T, H), u: (H,), h0: (B, H) -> (B, T, H).

    Iterates over ``unbind`` slices: indexing ``a[:, t]`` inside the loop would make backward
    quadratic in T (each index op's gradient materialises a full-size zero tensor).
    """
    check_activation(activation)
    act = ACTIVATIONS[activation]
    h = h0.to(torch.promote_types(a.dtype, u.dtype))
    out = []
    for a_t in a.unbind(1):
        h = act(torch.addcmul(a_t, u, h))
        out.append(h)
    return torch.stack(out, dim=1)
