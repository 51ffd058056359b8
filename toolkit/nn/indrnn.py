"""IndRNN: independently recurrent neural network (Li et al., CVPR 2018)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import State
from .bounds import AbsBounded
from .cell_stack import Cell, CellStack
from .kernels import check_activation, elementwise_recurrence
from .norm import NORM_MODES, build_norm
from .registry import register


def resolve_u_max(u_max: float | None, gamma: float | None, max_len: int | None) -> float:
    """|u| bound: given directly, or gamma^(1/max_len) (the IndRNN paper's gradient bound)."""
    if u_max is not None and (gamma is not None or max_len is not None):
        raise ValueError("indrnn: give either u_max or (gamma, max_len), not both")
    if gamma is not None or max_len is not None:
        if gamma is None or max_len is None or gamma <= 0 or max_len < 1:
            raise ValueError("indrnn: gamma > 0 and max_len >= 1 must be given together")
        return gamma ** (1.0 / max_len)
    u_max = 1.0 if u_max is None else u_max
    if u_max <= 0:
        raise ValueError(f"indrnn: u_max must be positive, got {u_max}")
    return float(u_max)


class IndRNNCell(Cell, AbsBounded):
    """One IndRNN layer, one direction: h_t = act(W x_t + b + u ⊙ h_{t-1}), |u| <= u_max.

    ``norm="frame"`` normalises W x_t per frame before the activation;
    ``norm="seq"`` normalises the output with statistics over all valid steps;
    ``norm="renorm"`` does so with batch renormalisation (``toolkit.nn.norm.MaskedBatchNorm``);
    ``norm="layer"`` layer-normalises W x_t at each step over the hidden units, in the place of
    ``frame`` (Ba, Kiros & Hinton 2016, "Layer Normalization"; ``toolkit.nn.norm.StepLayerNorm``)::

        h_t = act(LN(W x_t) + u ⊙ h_{t-1}),  LN(a) = g ⊙ (a - mean(a)) / sqrt(var(a) + eps) + beta

    with mean and (biased) variance over the H entries of a = W x_t of one sequence at one step, and
    a learned gain g and bias beta (beta replaces b, as frame's shift does). The recurrence stays
    elementwise (the fast kernels run it) and u ⊙ h_{t-1} is not normalised, so the unit's memory
    is as without a norm; no statistics cross steps or sequences, so there are no running averages
    and nothing differs between training and evaluation.

    The bound ``u_max`` is a plain attribute of the cell: every optimiser step clamps u to it
    (:mod:`toolkit.nn.bounds`), in copies too, and ``forward`` uses u clamped to it.
    u is exempt from weight decay (``weight_decay_exempt``): decay would pull it toward 0 and
    shorten the unit's memory.
    """

    weight_decay_exempt = ("u",)
    PRE_RECURRENCE = ("frame", "layer")  # norms applied to W x_t, before u ⊙ h_{t-1} is added

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        activation: str = "relu",
        u_max: float = 1.0,
        u_init: tuple[float, float] | None = None,
        norm: str | None = None,
        input_std: float | None = None,
    ):
        super().__init__()
        check_activation(activation)
        if input_std is not None and input_std <= 0:
            raise ValueError(f"indrnn: input_std must be positive, got {input_std}")
        self.input_std = input_std
        if norm is not None and norm not in NORM_MODES:
            raise ValueError(f"indrnn: norm must be None or one of {NORM_MODES}, got {norm!r}")
        self.hidden_size, self.activation, self.u_max, self.norm_mode = hidden_size, activation, float(u_max), norm
        # a norm before the recurrence brings its own shift, which makes the projection's bias redundant
        self.input = nn.Linear(input_size, hidden_size, bias=norm not in self.PRE_RECURRENCE)
        self.u = nn.Parameter(torch.empty(hidden_size))
        lo, hi = u_init if u_init is not None else (0.0, u_max)
        if not -u_max <= lo <= hi <= u_max:
            raise ValueError(f"indrnn: u_init {tuple(u_init)} must lie inside [-{u_max}, {u_max}]")
        self.u_init = (lo, hi)
        self.norm = build_norm(hidden_size, norm) if norm else None
        # per-step batch ("frame") statistics depend on where each step sits, so that mode keeps the
        # stack's reversed copies; every other step here (layer norm included: one position's own
        # features) is order-free or done by the kernel
        self.walks_backward = norm != "frame"
        self.reset_parameters()
        self.track_bounds()

    def abs_bounds(self) -> dict[str, float]:
        return {"u": self.u_max}

    def reset_parameters(self) -> None:
        fan_in = self.input.in_features
        # relu units: He initialisation keeps activations at scale through deep stacks
        gain = math.sqrt(2.0) if self.activation == "relu" else 1.0
        std = self.input_std if self.input_std is not None else gain / math.sqrt(fan_in)
        nn.init.normal_(self.input.weight, 0.0, std)
        if self.input.bias is not None:
            nn.init.zeros_(self.input.bias)
        nn.init.uniform_(self.u, *self.u_init)

    def forward(self, x: Tensor, lengths: Tensor, state: State, reverse: bool = False) -> tuple[Tensor, Tensor]:
        a = self.input(x)
        before = self.norm_mode in self.PRE_RECURRENCE
        if before:
            a = self.norm(a, lengths)
        u = self.u.clamp(-self.u_max, self.u_max)
        # the kernel stops each sequence at its length and returns its final state itself; a is
        # the projection's own output (unless normalised), so h may overwrite it
        h, final = elementwise_recurrence(
            a, u, state, self.activation, lengths=lengths, reverse=reverse, return_last=True,
            overwrite_a=not before,
        )
        if self.norm is not None and not before:
            h = self.norm(h, lengths)
        return h, final


@register(
    "indrnn",
    "h_t = relu(W x_t + u ⊙ h_{t-1} + b), |u| <= u_max",
    "Li et al. 2018, Independently Recurrent Neural Network (IndRNN), CVPR",
    renamed={"batch_norm": "norm"},
)
class IndRNN(CellStack):
    """Stacked IndRNN: h_t = act(W x_t + u ⊙ h_{t-1} + b), one recurrent weight per neuron.

    Li, Li, Cook, Zhu, Gao (2018), "Independently Recurrent Neural Network (IndRNN):
    Building a Longer and Deeper RNN", CVPR.

    Args:
        u_max: bound on |u|, kept after every optimiser step (also in deep copies, e.g. an EMA
            or ``AveragedModel``); or give ``gamma`` and ``max_len`` for the paper's bound
            gamma^(1/max_len).
        u_init: (lo, hi) of the uniform initialisation of u; default U(0, u_max).
        last_layer_u_init: (lo, hi) for the last layer only, e.g. the paper's classifier setting
            (eps^(1/T), gamma^(1/T)), or the official adding-problem code's (gamma^(-1/T), gamma^(1/T)):
            every unit of the last layer starts as an integrator, which is what carries a value
            across T = 1000 steps.
        input_std: W ~ N(0, input_std^2) (the official adding-problem code: 0.001); default He
            initialisation, N(0, 2 / fan_in) for relu.
        activation: "relu" (paper) or "tanh".
        norm: None, "seq" (after the activation, statistics over all steps) or "frame"
            (before the activation, per-frame statistics; for stateful language models), or
            "renorm" (as "seq", with batch renormalisation, Ioffe 2017: training then uses the
            running statistics evaluation uses; for length-sorted batches of short utterances), or
            "layer" (layer norm of W x_t over the hidden units at each step, before u ⊙ h_{t-1} is
            added: h_t = act(LN(W x_t) + u ⊙ h_{t-1}); Ba, Kiros & Hinton 2016; no batch statistics,
            so no running averages and no train/eval mismatch; chunked runs equal one pass).
            The same option as ``res_indrnn``'s and ``dense_indrnn``'s; ``batch_norm``, its old
            name, is still accepted by ``toolkit.nn.build`` with a ``DeprecationWarning``.

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
        norm: str | None = None,
        input_std: float | None = None,
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        self.u_max = resolve_u_max(u_max, gamma, max_len)

        def make(width: int, index: int) -> IndRNNCell:
            last = index == num_layers - 1 and last_layer_u_init is not None
            return IndRNNCell(
                width,
                hidden_size,
                activation=activation,
                u_max=self.u_max,
                u_init=last_layer_u_init if last else u_init,
                norm=norm,
                input_std=input_std,
            )

        self.build_cells(make)


class PreActIndRNN(nn.Module):
    """Batch norm (or, with ``norm="layer"``, layer norm per step over the input features), then one
    IndRNN layer (both directions if asked): the unit of the deep stacks.

    x (B, T, input_size) -> (B, T, hidden_size * directions). Pre-activation order as in
    "Deep Independently Recurrent Neural Network" (Li et al. 2019).
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool, norm: str, **indrnn_opts):
        super().__init__()
        self.norm = build_norm(input_size, norm)
        self.rnn = IndRNN(input_size, hidden_size, 1, bidirectional, **indrnn_opts)

    @property
    def output_size(self) -> int:
        return self.rnn.output_size

    def forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, State]:
        return self.rnn(self.norm(x, lengths), lengths, state)
