"""Stacks of single-direction recurrent cells: layers, directions, shared dropout, state."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .base import RecurrentLayer, State, mask_padding, reverse_padded, shared_dropout


class Cell(nn.Module):
    """One layer in one direction.

    ``forward(x (B, T, F), lengths (B,), state) -> (y (B, T, H), final_state)`` runs the whole
    padded sequence; outputs at padded steps may be anything finite (the stack zeroes them), but
    ``final_state`` must be the state after step ``lengths[b] - 1`` of each sequence.

    A cell whose ``walks_backward`` is True also takes ``reverse=True``: it then walks each
    sequence from step ``lengths[b] - 1`` down to 0 and returns outputs in the original order, with
    ``final_state`` the state after step 0.
    """

    hidden_size: int
    walks_backward: bool = False

    def init_state(self, x: Tensor) -> State:
        """Zero state for a batch like ``x (B, T, F)``."""
        return x.new_zeros(x.shape[0], self.hidden_size, dtype=self.state_dtype(x))

    def state_dtype(self, x: Tensor) -> torch.dtype:
        return torch.promote_types(x.dtype, next(self.parameters()).dtype)


class CellStack(RecurrentLayer):
    """``num_layers`` layers of ``make_cell(input_size, layer_index)`` cells, one per direction.

    The state is a list (one entry per layer) of lists (one per direction) of cell states.
    The backward direction sees each sequence reversed within its own length. Dropout between
    layers uses one mask per sequence, shared over time.
    """

    def build_cells(self, make_cell: Callable[[int, int], Cell]) -> None:
        self.layers = nn.ModuleList()
        width = self.input_size
        for index in range(self.num_layers):
            self.layers.append(nn.ModuleList(make_cell(width, index) for _ in range(self.num_directions)))
            width = self.layers[-1][0].hidden_size * self.num_directions

    def _forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, State]:
        if state is not None and (not isinstance(state, (list, tuple)) or len(state) != len(self.layers)):
            raise ValueError(
                f"{self.layer_name}: state must be the state returned by this layer "
                f"(a list of {len(self.layers)} layer states)"
            )
        new_state = []
        for index, directions in enumerate(self.layers):
            if index > 0:
                x = shared_dropout(x, self.dropout, self.training)
            layer_state = state[index] if state is not None else [None] * len(directions)
            outputs, states = [], []
            for direction, cell in enumerate(directions):
                s0 = layer_state[direction] if layer_state[direction] is not None else cell.init_state(x)
                if direction == 1 and cell.walks_backward:
                    # the cell walks each sequence backward itself (the fused kernel on GPU), so the
                    # input and output need no reversed copies
                    y, s = cell(x, lengths, s0, reverse=True)
                    outputs.append(y)
                else:
                    xd = x if direction == 0 else reverse_padded(x, lengths)
                    y, s = cell(xd, lengths, s0)
                    outputs.append(y if direction == 0 else reverse_padded(y, lengths))
                states.append(s)
            x = mask_padding(torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0], lengths)
            new_state.append(states)
        return x, new_state
