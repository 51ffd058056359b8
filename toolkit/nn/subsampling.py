"""Frame-rate reduction in front of a recurrent encoder: frame stacking or strided convolution.

Both map ``x (B, T, F), lengths (B,) -> (y (B, T', F'), lengths')`` with ``T' = ceil(T / factor)``
and keep the layer contract: padded input frames never reach valid outputs, padded outputs are zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import mask_padding


def _reduced(lengths: Tensor, factor: int) -> Tensor:
    return torch.div(lengths + factor - 1, factor, rounding_mode="floor")


class FrameStack(nn.Module):
    """Concatenate each ``factor`` consecutive frames into one: (B, T, F) -> (B, ceil(T/k), k F).

    Used for IndRNN/LSTM acoustic models since Sak et al. 2015 ("Fast and accurate recurrent
    neural network acoustic models for speech recognition"): fewer, wider steps.
    """

    def __init__(self, input_size: int, factor: int = 3):
        super().__init__()
        if factor < 1:
            raise ValueError(f"subsampling factor must be >= 1, got {factor}")
        self.factor, self.output_size = factor, input_size * factor

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        k = self.factor
        x = mask_padding(x, lengths)  # padded frames stacked next to valid ones must be zeros
        B, T, Fdim = x.shape
        pad = (-T) % k
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
        return x.reshape(B, (T + pad) // k, Fdim * k), _reduced(lengths, k)


class ConvSubsampling(nn.Module):
    """Strided 3x3 convolutions over (time, frequency), stride 2 each, ReLU: factor 2 or 4
    (as in Dong et al. 2018, "Speech-Transformer"). Output (B, ceil(T/factor), channels * F')."""

    def __init__(self, input_size: int, factor: int = 4, channels: int = 32):
        super().__init__()
        if factor not in (2, 4, 8):
            raise ValueError(f"conv subsampling factor must be 2, 4 or 8, got {factor}")
        self.factor = factor
        self.convs = nn.ModuleList()
        freq, ch = input_size, 1
        for _ in range(int(math.log2(factor))):
            self.convs.append(nn.Conv2d(ch, channels, 3, stride=2, padding=1))
            ch, freq = channels, (freq + 1) // 2
        self.output_size = channels * freq

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        h = x.unsqueeze(1)  # (B, 1, T, F)
        for conv in self.convs:
            # zero the padding before each conv so it cannot leak into the last valid frames
            h = h * (torch.arange(h.shape[2], device=h.device)[None, :] < lengths[:, None])[:, None, :, None]
            h = torch.relu(conv(h))
            lengths = _reduced(lengths, 2)
        B, C, T, Fq = h.shape
        y = h.permute(0, 2, 1, 3).reshape(B, T, C * Fq)
        return mask_padding(y, lengths), lengths


def build_subsampling(kind: str, input_size: int, factor: int) -> nn.Module:
    """``"stack"`` (frame stacking), ``"conv"`` (strided convolutions) or ``"none"``."""
    if kind == "stack":
        return FrameStack(input_size, factor)
    if kind == "conv":
        return ConvSubsampling(input_size, factor)
    if kind == "none":
        return FrameStack(input_size, 1)
    raise ValueError(f"unknown subsampling {kind!r}; choose stack, conv or none")
