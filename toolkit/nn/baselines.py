"""The standard gated and tanh RNNs on PyTorch's fused (cuDNN) kernels: lstm, gru, rnn_tanh."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register
from .torch_rnn import TorchRNN


@register(
    "lstm",
    "c_t = f ⊙ c_{t-1} + i ⊙ tanh(W_c [x_t, h_{t-1}]); h_t = o ⊙ tanh(c_t)",
    "Hochreiter & Schmidhuber 1997, Long Short-Term Memory; forget gate: Gers et al. 2000",
)
class LSTM(TorchRNN):
    """LSTM (Hochreiter & Schmidhuber 1997) with forget gate (Gers, Schmidhuber, Cummins 2000).

    i, f, g, o = σ, σ, tanh, σ of (W x_t + U h_{t-1} + b); c_t = f ⊙ c_{t-1} + i ⊙ g;
    h_t = o ⊙ tanh(c_t). ``forget_bias`` sets the forget gate's total bias at initialisation
    (1.0 by default, Jozefowicz et al. 2015); ``None`` keeps PyTorch's initialisation.

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        forget_bias: float | None = 1.0,
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.rnn = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        if forget_bias is not None:
            with torch.no_grad():
                for name, p in self.rnn.named_parameters():
                    if name.startswith("bias_"):
                        forget = slice(hidden_size, 2 * hidden_size)  # PyTorch gate order: i, f, g, o
                        p[forget].fill_(forget_bias if name.startswith("bias_ih") else 0.0)


@register(
    "gru",
    "z, r = σ(W x_t + U h_{t-1}); h_t = (1 - z) ⊙ tanh(W x_t + r ⊙ U h_{t-1}) + z ⊙ h_{t-1}",
    "Cho et al. 2014, Learning Phrase Representations using RNN Encoder-Decoder, EMNLP",
)
class GRU(TorchRNN):
    """Gated recurrent unit (Cho et al. 2014) on PyTorch's fused kernel.

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.rnn = nn.GRU(
            input_size,
            hidden_size,
            num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )


@register(
    "rnn_tanh",
    "h_t = tanh(W x_t + U h_{t-1} + b)",
    "Elman 1990, Finding Structure in Time, Cognitive Science",
)
class RNNTanh(TorchRNN):
    """Elman RNN h_t = tanh(W x_t + U h_{t-1} + b) (Elman 1990) on PyTorch's fused kernel.

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.rnn = nn.RNN(
            input_size,
            hidden_size,
            num_layers,
            nonlinearity="tanh",
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
