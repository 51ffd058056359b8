"""Densely connected IndRNN (Li et al. 2019, "Deep Independently Recurrent Neural Network")."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import RecurrentLayer, State, mask_padding, shared_dropout
from .indrnn import IndRNN, PreActIndRNN, resolve_u_max
from .registry import register


class DenseUnit(nn.Module):
    """One dense layer: [BN -> IndRNN(bottleneck)] -> BN -> IndRNN(growth); its output is concatenated
    (LN in place of BN with ``norm="layer"``)."""

    def __init__(self, width: int, growth: int, bottleneck: int | None, bidirectional: bool, norm: str, opts: dict):
        super().__init__()
        d = 2 if bidirectional else 1
        self.units = nn.ModuleList()
        if bottleneck:
            self.units.append(PreActIndRNN(width, bottleneck, bidirectional, norm, **opts))
            width = bottleneck * d
        self.units.append(PreActIndRNN(width, growth, bidirectional, norm, **opts))


@register(
    "dense_indrnn",
    "x_{l+1} = [x_l, F(x_l)], F = BN -> IndRNN(4k) -> BN -> IndRNN(k); transitions compress",
    "Li et al. 2019, Deep Independently Recurrent Neural Network (IndRNN), arXiv:1910.06251",
)
class DenseIndRNN(RecurrentLayer):
    """DenseNet-style IndRNN.

    A first IndRNN layer maps the input to ``hidden_size``. ``num_layers`` dense layers follow,
    split over ``num_blocks`` dense blocks; each dense layer sees the concatenation of every
    earlier output in its block and adds ``growth_rate`` features (through a bottleneck of
    ``4 * growth_rate`` when ``bottleneck``). Between blocks a transition (BN -> IndRNN) keeps
    ``compression`` of the features; a last transition maps to ``hidden_size``.

    Li, Li, Cook, Gao (2019), "Deep Independently Recurrent Neural Network (IndRNN)";
    Huang et al. (2017), "Densely Connected Convolutional Networks".

    Args:
        norm: the norm before each IndRNN unit: "seq", "frame" or "renorm" (batch norm), or "layer"
            (layer norm per step over the unit's input features, Ba, Kiros & Hinton 2016: no batch
            statistics), as for ``res_indrnn`` (and ``indrnn``'s ``norm``).
        u_max, gamma, max_len, u_init, activation: as for ``indrnn``.

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        growth_rate: int | None = None,
        num_blocks: int = 3,
        bottleneck: bool = True,
        compression: float = 0.5,
        activation: str = "relu",
        u_max: float | None = None,
        gamma: float | None = None,
        max_len: int | None = None,
        u_init: tuple[float, float] | None = None,
        norm: str = "seq",
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"dense_indrnn: compression must be in (0, 1], got {compression}")
        if num_blocks < 1:
            raise ValueError(f"dense_indrnn: num_blocks must be >= 1, got {num_blocks}")
        d = self.num_directions
        growth = growth_rate or max(8, hidden_size // 4)
        opts = dict(activation=activation, u_max=resolve_u_max(u_max, gamma, max_len), u_init=u_init)
        self.first = IndRNN(input_size, hidden_size, 1, bidirectional, **opts)
        blocks = min(num_blocks, num_layers)
        counts = [num_layers // blocks + (1 if b < num_layers % blocks else 0) for b in range(blocks)]
        width = hidden_size * d
        self.blocks = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for b, count in enumerate(counts):
            block = nn.ModuleList()
            for _ in range(count):
                block.append(DenseUnit(width, growth, 4 * growth if bottleneck else None, bidirectional, norm, opts))
                width += growth * d
            self.blocks.append(block)
            out = hidden_size if b == len(counts) - 1 else max(1, int(width // d * compression))
            self.transitions.append(PreActIndRNN(width, out, bidirectional, norm, **opts))
            width = out * d

    def _units(self) -> list[nn.Module]:
        units = [self.first]
        for block, transition in zip(self.blocks, self.transitions, strict=True):
            for layer in block:
                units.extend(layer.units)
            units.append(transition)
        return units

    def _forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, State]:
        n = len(self._units())
        if state is not None and (not isinstance(state, (list, tuple)) or len(state) != n):
            raise ValueError(f"dense_indrnn: state must be a list of {n} unit states")
        states = iter(state) if state is not None else iter([None] * n)
        new_state = []
        x, s = self.first(x, lengths, next(states))
        new_state.append(s)
        for block, transition in zip(self.blocks, self.transitions, strict=True):
            for layer in block:
                y = x
                for unit in layer.units:
                    y, s = unit(y, lengths, next(states))
                    new_state.append(s)
                x = torch.cat([x, shared_dropout(y, self.dropout, self.training)], dim=-1)
            x, s = transition(x, lengths, next(states))
            new_state.append(s)
        return mask_padding(x, lengths), new_state
