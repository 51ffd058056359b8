"""MinimalRNN (Chen 2017)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import State, last_valid
from .cell_stack import Cell, CellStack
from .registry import register


class MinimalRNNCell(Cell):
    """z_t = tanh(W_x x_t + b_z); u_t = σ(U_h h_{t-1} + U_z z_t + b_u); h_t = u_t ⊙ h_{t-1} + (1 - u_t) ⊙ z_t."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.phi = nn.Linear(input_size, hidden_size)
        self.gate_z = nn.Linear(hidden_size, hidden_size)  # carries b_u
        self.gate_h = nn.Linear(hidden_size, hidden_size, bias=False)
        nn.init.orthogonal_(self.gate_h.weight)

    def forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, Tensor]:
        z = torch.tanh(self.phi(x))
        gz = self.gate_z(z)
        h, out = state, []
        for z_t, gz_t in zip(z.unbind(1), gz.unbind(1), strict=True):
            u = torch.sigmoid(gz_t + self.gate_h(h))
            h = z_t + u * (h - z_t)
            out.append(h)
        y = torch.stack(out, dim=1)
        return y, last_valid(y, lengths)


@register(
    "minimalrnn",
    "z_t = Φ(x_t); u_t = σ(U_h h_{t-1} + U_z z_t + b); h_t = u_t ⊙ h_{t-1} + (1 - u_t) ⊙ z_t",
    "Chen 2017, MinimalRNN: Toward More Interpretable and Trainable Recurrent Neural Networks, arXiv:1711.06788",
)
class MinimalRNN(CellStack):
    """MinimalRNN (Chen 2017): the input is mapped once to a latent z_t = Φ(x_t) = tanh(W_x x_t + b_z);
    an update gate u_t = σ(U_h h_{t-1} + U_z z_t + b_u) blends it into h_t = u_t ⊙ h_{t-1} + (1 - u_t) ⊙ z_t.

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.build_cells(lambda width, _: MinimalRNNCell(width, hidden_size))
