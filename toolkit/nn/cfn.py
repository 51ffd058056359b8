"""Chaos-free network, CFN (Laurent & von Brecht 2016)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import State, last_valid
from .cell_stack import Cell, CellStack
from .registry import register


class CFNCell(Cell):
    """θ_t = σ(U_θ h_{t-1} + V_θ x_t + b_θ); η_t = σ(U_η h_{t-1} + V_η x_t + b_η);
    h_t = θ_t ⊙ tanh(h_{t-1}) + η_t ⊙ tanh(W x_t)."""

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0, input_bias: float = -1.0):
        super().__init__()
        self.hidden_size = hidden_size
        self.candidate = nn.Linear(input_size, hidden_size, bias=False)  # W x_t: no bias in the paper
        self.gates_in = nn.Linear(input_size, 2 * hidden_size)
        self.recurrent = nn.Linear(hidden_size, 2 * hidden_size, bias=False)
        with torch.no_grad():
            self.gates_in.bias[:hidden_size].fill_(forget_bias)
            self.gates_in.bias[hidden_size:].fill_(input_bias)

    def forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, Tensor]:
        cand = torch.tanh(self.candidate(x))
        gates = self.gates_in(x)
        h, out = state, []
        for c_t, g_t in zip(cand.unbind(1), gates.unbind(1), strict=True):
            theta, eta = torch.sigmoid(g_t + self.recurrent(h)).chunk(2, dim=-1)
            h = theta * torch.tanh(h) + eta * c_t
            out.append(h)
        y = torch.stack(out, dim=1)
        return y, last_valid(y, lengths)


@register(
    "cfn",
    "h_t = θ_t ⊙ tanh(h_{t-1}) + η_t ⊙ tanh(W x_t), θ, η sigmoid gates",
    "Laurent & von Brecht 2017, A Recurrent Neural Network Without Chaos, ICLR",
)
class CFN(CellStack):
    """Chaos-free network (Laurent & von Brecht 2017): h_t = θ_t ⊙ tanh(h_{t-1}) + η_t ⊙ tanh(W x_t),
    θ_t = σ(U_θ h_{t-1} + V_θ x_t + b_θ), η_t = σ(U_η h_{t-1} + V_η x_t + b_η).

    ``forget_bias`` / ``input_bias`` initialise b_θ / b_η (the paper's 1 and -1).

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        forget_bias: float = 1.0,
        input_bias: float = -1.0,
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.build_cells(lambda width, _: CFNCell(width, hidden_size, forget_bias, input_bias))
