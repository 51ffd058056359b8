"""Reference form of the elementwise recurrence, written as the equation reads (for tests)."""

from __future__ import annotations

import torch
from torch import Tensor

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda v: v}


def check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")


def elementwise_recurrence_reference(
    a: Tensor,
    u: Tensor,
    h0: Tensor,
    activation: str = "relu",
    *,
    lengths: Tensor | None = None,
    reverse: bool = False,
    return_last: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """h_t = act(a_t + u * h_{t-1}), one sequence and one step at a time.

    a: (B, T, H) input contributions, u: (H,) recurrent weights, h0: (B, H) -> h: (B, T, H).
    With ``lengths`` (B,), sequence b is ``a[b, :lengths[b]]``: its later steps output zero.
    ``reverse`` walks each sequence from its last valid step back to step 0. With
    ``return_last`` the state after the last processed step, (B, H), is returned as well
    (``h0[b]`` for an empty sequence).
    """
    check_activation(activation)
    act = ACTIVATIONS[activation]
    batch, steps, _ = a.shape
    outputs, finals = [], []
    for b in range(batch):
        n = steps if lengths is None else int(lengths[b])
        order = range(n - 1, -1, -1) if reverse else range(n)
        h = h0[b]
        rows = {}
        for t in order:
            h = act(a[b, t] + u * h)
            rows[t] = h
        zero = torch.zeros_like(a[b, 0])
        outputs.append(torch.stack([rows.get(t, zero) for t in range(steps)]))
        finals.append(h)
    y = torch.stack(outputs)
    return (y, torch.stack(finals)) if return_last else y
