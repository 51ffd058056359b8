"""The contract every recurrent layer keeps, and the helpers that enforce it.

Layers are batch-first: ``forward(x (B, T, F), lengths (B,) | None, state=None)``
returns ``(y (B, T, H * directions), state)``. Outputs at padded steps are zero, outputs at
valid steps do not depend on padding, and a state is a nested tuple/list of tensors whose
first dimension is the batch (so it can be detached, indexed per hypothesis, or carried
across chunks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

State = Any  # nested tuples/lists of batch-first tensors, or None


def check_input(x: Tensor, lengths: Tensor | None, input_size: int, name: str) -> Tensor:
    """Validate ``x (B, T, F)`` and ``lengths (B,)``; return lengths as a long tensor on x's device."""
    if not isinstance(x, Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected input of shape (batch, time, features), got {shape}")
    batch, steps, feats = x.shape
    if feats != input_size:
        raise ValueError(f"{name}: input has {feats} features but the layer was built for {input_size}")
    if steps < 1:
        raise ValueError(f"{name}: input has no time steps")
    if lengths is None:
        return torch.full((batch,), steps, dtype=torch.long, device=x.device)
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(f"{name}: lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"{name}: lengths must be integers, got {lengths.dtype}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > steps:
        raise ValueError(f"{name}: lengths must lie in [1, {steps}] (the time dimension), got [{lo}, {hi}]")
    return lengths.to(device=x.device, dtype=torch.long)


def length_mask(lengths: Tensor, steps: int) -> Tensor:
    """(B, T) boolean mask, True at valid steps."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]


def mask_padding(y: Tensor, lengths: Tensor) -> Tensor:
    """Zero ``y (B, T, H)`` at padded steps."""
    if int(lengths.min()) == y.shape[1]:
        return y
    return y * length_mask(lengths, y.shape[1]).unsqueeze(-1).to(y.dtype)


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of ``x (B, T, ...)`` within its own length; padding stays in place."""
    steps = x.shape[1]
    t = torch.arange(steps, device=x.device)[None, :]
    idx = lengths[:, None] - 1 - t
    idx = torch.where(idx >= 0, idx, t)
    idx = idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


def last_valid(y: Tensor, lengths: Tensor) -> Tensor:
    """``y[b, lengths[b] - 1]`` for every b: (B, T, H) -> (B, H)."""
    return y[torch.arange(y.shape[0], device=y.device), lengths - 1]


def shared_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout with one mask per sequence, shared over time (Gal & Ghahramani 2016). x: (B, T, F)."""
    if not training or p == 0.0:
        return x
    keep = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1.0 - p)
    return x * keep / (1.0 - p)


def map_state(state: State, fn: Callable[[Tensor], Tensor]) -> State:
    """Apply ``fn`` to every tensor of a (nested) state."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, (list, tuple)):
        return type(state)(map_state(s, fn) for s in state)
    raise TypeError(f"unsupported state element {type(state).__name__}")


def detach_state(state: State) -> State:
    """Cut the graph behind a carried state (truncated BPTT)."""
    return map_state(state, Tensor.detach)


def select_state(state: State, index: Tensor) -> State:
    """Pick batch rows of a state, e.g. to follow beam-search hypotheses. index: (N,) long."""
    return map_state(state, lambda s: s.index_select(0, index))


class RecurrentLayer(nn.Module):
    """Base class: stores the common sizes and validates input before ``_forward``."""

    layer_name = "recurrent"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions

    def forward(self, x: Tensor, lengths: Tensor | None = None, state: State = None) -> tuple[Tensor, State]:
        """x: (B, T, input_size); lengths: (B,) or None -> (y (B, T, output_size), state)."""
        lengths = check_input(x, lengths, self.input_size, self.layer_name)
        y, state = self._forward(x, lengths, state)
        return mask_padding(y, lengths), state

    def _forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, State]:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}"
        )
