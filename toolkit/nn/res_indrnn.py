"""Residual IndRNN (Li et al. 2019, "Deep Independently Recurrent Neural Network")."""

from __future__ import annotations

from torch import Tensor, nn

from .base import RecurrentLayer, State, mask_padding, shared_dropout
from .indrnn import IndRNN, PreActIndRNN, resolve_u_max
from .norm import build_norm
from .registry import register


@register(
    "res_indrnn",
    "x_{l+1} = x_l + F(x_l), F = [BN -> IndRNN+ReLU] x 2",
    "Li et al. 2019, Deep Independently Recurrent Neural Network (IndRNN), arXiv:1910.06251",
)
class ResIndRNN(RecurrentLayer):
    """Deep residual IndRNN with pre-activation blocks.

    A first IndRNN layer maps the input to ``hidden_size``; the remaining ``num_layers - 1``
    IndRNN layers form residual blocks x + F(x) with F = [BN -> IndRNN (W x + u ⊙ h, ReLU)] x 2
    (the last block has one unit when ``num_layers - 1`` is odd); a final BN closes the stack.
    ``num_layers`` counts IndRNN layers, as the paper does (21 layers = 1 + 10 blocks x 2).

    Li, Li, Cook, Gao (2019), "Deep Independently Recurrent Neural Network (IndRNN)".

    Args:
        norm: "seq" (statistics over all steps), "frame" (per-step, causal; for stateful LMs) or
            "renorm" (as "seq", with batch renormalisation, Ioffe 2017: training normalises with
            the running statistics evaluation uses, so length-sorted batches of very short
            utterances, whose statistics differ from the corpus's, leave no train/eval mismatch), or
            "layer": layer norm (Ba, Kiros & Hinton 2016) in the same two places, per step over the
            features, LN(v) = g ⊙ (v - mean(v)) / sqrt(var(v) + eps) + beta, so each block is
            x + F(x) with F = [LN -> IndRNN+ReLU] x 2 and the stack ends in LN (pre-LN residual
            order); no batch statistics, so no running averages, nothing differs between training
            and evaluation, and chunked runs equal one pass also in training.
            The same option as ``indrnn``'s ``norm`` and ``dense_indrnn``'s (in ``indrnn``, which has
            no pre-activation slot, "frame" and "layer" normalise W x_t).
        dropout: applied, with one mask over time, to each block's residual branch.
        u_max, gamma, max_len, u_init, last_layer_u_init, activation: as for ``indrnn``.

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        activation: str = "relu",
        u_max: float | None = None,
        gamma: float | None = None,
        max_len: int | None = None,
        u_init: tuple[float, float] | None = None,
        last_layer_u_init: tuple[float, float] | None = None,
        norm: str = "seq",
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        opts = dict(activation=activation, u_max=resolve_u_max(u_max, gamma, max_len), u_init=u_init)
        width = self.output_size
        rest = num_layers - 1
        sizes = [2] * (rest // 2) + [1] * (rest % 2)
        last = {"u_init": last_layer_u_init} if last_layer_u_init is not None else {}
        self.first = IndRNN(input_size, hidden_size, 1, bidirectional, **(opts | (last if not sizes else {})))
        self.blocks = nn.ModuleList()
        for b, size in enumerate(sizes):
            units = []
            for i in range(size):
                is_last = b == len(sizes) - 1 and i == size - 1
                units.append(
                    PreActIndRNN(width, hidden_size, bidirectional, norm, **(opts | (last if is_last else {})))
                )
            self.blocks.append(nn.ModuleList(units))
        self.final_norm = build_norm(width, norm)

    def _forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, State]:
        if state is not None and (not isinstance(state, (list, tuple)) or len(state) != self.num_layers):
            raise ValueError(f"res_indrnn: state must be a list of {self.num_layers} layer states")
        states = iter(state) if state is not None else iter([None] * self.num_layers)
        new_state = []
        x, s = self.first(x, lengths, next(states))
        new_state.append(s)
        for units in self.blocks:
            branch = x
            for unit in units:
                branch, s = unit(branch, lengths, next(states))
                new_state.append(s)
            x = x + shared_dropout(branch, self.dropout, self.training)
        return mask_padding(self.final_norm(x, lengths), lengths), new_state
