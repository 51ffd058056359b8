"""Batch normalisation for padded sequences (padded steps never enter the statistics)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import length_mask

NORM_MODES = ("seq", "frame")


class MaskedBatchNorm(nn.Module):
    """Batch norm over ``x (B, T, H)`` that ignores padded steps.

    ``mode="seq"``: one mean/variance per feature over every valid step of the batch
    (Ioffe & Szegedy 2015, as used after the activation in IndRNN, Li et al. 2018).
    ``mode="frame"``: statistics over the batch separately for each time step, so a frame is
    normalised without looking at later frames; this keeps a stateful language model causal and
    makes chunked runs equal to one pass even in training. Running statistics (for evaluation)
    are shared across time in both modes.
    """

    def __init__(self, num_features: int, mode: str = "seq", momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        if mode not in NORM_MODES:
            raise ValueError(f"unknown batch-norm mode {mode!r}; choose one of {', '.join(NORM_MODES)}")
        self.mode, self.momentum, self.eps = mode, momentum, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: (B, T, H), lengths: (B,) -> (B, T, H)."""
        # statistics in at least float32, also when x is bf16/fp16 under autocast
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        if self.training:
            mask = length_mask(lengths, x.shape[1]).unsqueeze(-1).to(xf.dtype)
            dims = (0, 1) if self.mode == "seq" else (0,)
            count = mask.sum(dims)  # (1,) for seq, (T, 1) for frame
            mean = (xf * mask).sum(dims) / count.clamp(min=1)
            var = ((xf - mean) ** 2 * mask).sum(dims) / count.clamp(min=1)
            with torch.no_grad():
                total = count.sum()
                share = count / total  # frames weighted by how many sequences are valid there
                batch_mean = (mean * share).sum(0) if self.mode == "frame" else mean
                batch_var = (var * share).sum(0) if self.mode == "frame" else var
                n = float(total)
                self.running_mean.lerp_(batch_mean.to(self.running_mean.dtype), self.momentum)
                self.running_var.lerp_((batch_var * (n / max(n - 1.0, 1.0))).to(self.running_var.dtype), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        y = (xf - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        return y.to(x.dtype) if not torch.is_autocast_enabled(x.device.type) else y

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, mode={self.mode!r}"
