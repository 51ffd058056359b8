"""Recurrent connections through time delays (Lin, Horne, Tiňo, Giles 1996)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import State
from .cell_stack import Cell, CellStack
from .registry import register


class DelayCell(Cell):
    """h_t = tanh(W x_t + U_1 h_{t-1} + U_d h_{t-d} + b); the state holds the last d outputs."""

    def __init__(self, input_size: int, hidden_size: int, delay: int):
        super().__init__()
        self.hidden_size, self.delay = hidden_size, delay
        self.input = nn.Linear(input_size, hidden_size)
        self.recurrent = nn.Linear(hidden_size, hidden_size, bias=False)
        self.delayed = nn.Linear(hidden_size, hidden_size, bias=False)
        nn.init.orthogonal_(self.recurrent.weight)
        nn.init.orthogonal_(self.delayed.weight, gain=0.5)

    def init_state(self, x: Tensor) -> Tensor:
        """(B, d, H): h_{t-d} ... h_{t-1}, oldest first."""
        return x.new_zeros(x.shape[0], self.delay, self.hidden_size, dtype=self.state_dtype(x))

    def forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, Tensor]:
        a = self.input(x)
        history = list(state.unbind(1))  # grows by one output per step
        for a_t in a.unbind(1):
            history.append(torch.tanh(a_t + self.recurrent(history[-1]) + self.delayed(history[-self.delay])))
        full = torch.stack(history, dim=1)  # (B, d + T, H); index j is time j - d
        y = full[:, self.delay :]
        idx = lengths[:, None] + torch.arange(self.delay, device=x.device)[None, :]
        final = full.gather(1, idx.unsqueeze(-1).expand(-1, -1, self.hidden_size))
        return y, final


@register(
    "delay",
    "h_t = tanh(W x_t + U_1 h_{t-1} + U_d h_{t-d} + b)",
    "Lin, Horne, Tiňo, Giles 1996, Learning long-term dependencies in NARX recurrent neural networks, IEEE TNN",
)
class Delay(CellStack):
    """Recurrence from t-1 and through a delay line from t-d: h_t = tanh(W x_t + U_1 h_{t-1} + U_d h_{t-d} + b).

    Gradients reach d steps back through one multiplication, so the effective memory grows by
    a factor of d (Lin, Horne, Tiňo, Giles 1996, IEEE Trans. Neural Networks 7(6)).

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        delay: int = 4,
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        if not isinstance(delay, int) or delay < 2:
            raise ValueError(f"delay: delay must be an integer >= 2 (1 is the ordinary recurrence), got {delay!r}")
        self.build_cells(lambda width, _: DelayCell(width, hidden_size, delay))
