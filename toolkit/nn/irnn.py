"""IRNN: ReLU RNN with identity-initialised recurrence (Le, Jaitly, Hinton 2015)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register
from .torch_rnn import TorchRNN


@register(
    "irnn",
    "h_t = relu(W x_t + U h_{t-1} + b), U_0 = scale * I",
    "Le, Jaitly, Hinton 2015, A Simple Way to Initialize Recurrent Networks of ReLU units, arXiv:1504.00941",
)
class IRNN(TorchRNN):
    """ReLU RNN h_t = relu(W x_t + U h_{t-1} + b) on PyTorch's fused kernel.

    Initialisation (Le et al. 2015): U = scale * I (``scale`` 1 by default; 0.01 is the paper's
    choice for some tasks), biases zero, input weights W ~ N(0, input_std^2) with input_std 0.001.

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        scale: float = 1.0,
        input_std: float = 0.001,
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.scale, self.input_std = scale, input_std
        self.rnn = nn.RNN(
            input_size,
            hidden_size,
            num_layers,
            nonlinearity="relu",
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for name, p in self.rnn.named_parameters():
                if name.startswith("weight_hh"):
                    p.copy_(self.scale * torch.eye(self.hidden_size, device=p.device, dtype=p.dtype))
                elif name.startswith("weight_ih"):
                    p.normal_(0.0, self.input_std)
                else:
                    p.zero_()
