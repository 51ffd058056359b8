"""Clockwork RNN (Koutník, Greff, Gomez, Schmidhuber 2014)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import State, last_valid
from .cell_stack import Cell, CellStack
from .registry import register


class ClockworkCell(Cell):
    """Modules with periods 2^i: module i updates only when t mod 2^i == 0 and reads only
    modules at least as slow as itself; the others keep their value."""

    def __init__(self, input_size: int, hidden_size: int, num_modules: int):
        super().__init__()
        if not 1 <= num_modules <= hidden_size:
            raise ValueError(f"clockwork: num_modules must be in [1, hidden_size], got {num_modules}")
        self.hidden_size = hidden_size
        module_of_unit = torch.cat(
            [torch.full((len(c),), i) for i, c in enumerate(torch.arange(hidden_size).tensor_split(num_modules))]
        )
        self.register_buffer("period", (2**module_of_unit).long(), persistent=False)
        # row unit (receiver) reads column unit (sender) only if the sender is as slow or slower
        self.register_buffer("connect", (module_of_unit[None, :] >= module_of_unit[:, None]).float(), persistent=False)
        self.input = nn.Linear(input_size, hidden_size)
        self.recurrent = nn.Parameter(torch.empty(hidden_size, hidden_size))
        nn.init.orthogonal_(self.recurrent)

    def init_state(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(h (B, H), t (B,) the global step of each sequence's next input)."""
        return super().init_state(x), torch.zeros(x.shape[0], dtype=torch.long, device=x.device)

    def forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, t0 = state
        a = self.input(x)
        weight = self.recurrent * self.connect
        out = []
        for step, a_t in enumerate(a.unbind(1)):
            active = ((t0 + step)[:, None] % self.period[None, :]) == 0  # (B, H)
            h = torch.where(active, torch.tanh(a_t + h @ weight.T), h)
            out.append(h)
        y = torch.stack(out, dim=1)
        return y, (last_valid(y, lengths), t0 + lengths)


@register(
    "clockwork",
    "h^i_t = tanh(W^i x_t + Σ_{j>=i} U^{ij} h^j_{t-1}) if t mod 2^i = 0 else h^i_{t-1}",
    "Koutník, Greff, Gomez, Schmidhuber 2014, A Clockwork RNN, ICML",
)
class Clockwork(CellStack):
    """Clockwork RNN: the hidden units are split into ``num_modules`` modules with periods 2^i;
    module i updates only when t mod 2^i == 0 and receives recurrent input only from modules
    with period >= its own (slow modules feed fast ones). The state carries each sequence's step
    count, so chunked runs keep the clock.

    Koutník, Greff, Gomez, Schmidhuber (2014), "A Clockwork RNN", ICML.

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        num_modules: int = 4,
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.build_cells(lambda width, _: ClockworkCell(width, hidden_size, min(num_modules, hidden_size)))
