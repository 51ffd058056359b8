"""Leaky-integrator units with several time scales (Jaeger et al. 2007; Bengio et al. 2013)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import State, last_valid
from .cell_stack import Cell, CellStack
from .kernels import ACTIVATIONS, check_activation
from .registry import register


def time_scale_alphas(hidden_size: int, tau_min: float, tau_max: float) -> Tensor:
    """Leak rates α_i = 1 - 1/τ_i with τ spread geometrically over [tau_min, tau_max]: (H,)."""
    if not 1.0 <= tau_min <= tau_max:
        raise ValueError(f"leaky: need 1 <= tau_min <= tau_max, got {tau_min}, {tau_max}")
    steps = torch.linspace(0.0, 1.0, hidden_size) if hidden_size > 1 else torch.zeros(1)
    tau = tau_min * (tau_max / tau_min) ** steps
    return 1.0 - 1.0 / tau


class LeakyCell(Cell):
    """h_t = α ⊙ h_{t-1} + (1 - α) ⊙ f(W x_t + U h_{t-1} + b)."""

    def __init__(
        self, input_size: int, hidden_size: int, tau_min: float, tau_max: float, learn_alpha: bool, activation: str
    ):
        super().__init__()
        check_activation(activation)
        self.hidden_size, self.activation = hidden_size, activation
        self.input = nn.Linear(input_size, hidden_size)
        self.recurrent = nn.Linear(hidden_size, hidden_size, bias=False)
        nn.init.orthogonal_(self.recurrent.weight)
        alpha = time_scale_alphas(hidden_size, tau_min, tau_max).clamp(max=1.0 - 1e-4)
        if learn_alpha:
            # α = σ(a): learned, always a valid leak rate in (0, 1). Like IndRNN's u it is a
            # per-unit recurrent weight: weight decay would pull α to 1/2 and erase the time scales
            self.alpha_logit = nn.Parameter(torch.log(alpha.clamp(min=1e-4)) - torch.log1p(-alpha))
            self.weight_decay_exempt = ("alpha_logit",)
        else:
            self.register_buffer("alpha_fixed", alpha)

    @property
    def alpha(self) -> Tensor:
        if hasattr(self, "alpha_logit"):
            return torch.sigmoid(self.alpha_logit)
        return self.alpha_fixed

    def forward(self, x: Tensor, lengths: Tensor, state: State) -> tuple[Tensor, Tensor]:
        act = ACTIVATIONS[self.activation]
        a = self.input(x)
        alpha = self.alpha
        h, out = state, []
        for a_t in a.unbind(1):
            f = act(a_t + self.recurrent(h))
            h = f + alpha * (h - f)  # α h + (1 - α) f, in the wider of the two dtypes under autocast
            out.append(h)
        y = torch.stack(out, dim=1)
        return y, last_valid(y, lengths)


@register(
    "leaky",
    "h_t = α ⊙ h_{t-1} + (1 - α) ⊙ tanh(W x_t + U h_{t-1} + b), α per unit over time scales",
    "Jaeger et al. 2007, Optimization and applications of echo state networks with leaky-integrator neurons",
)
class Leaky(CellStack):
    """Leaky-integrator units: h_t = α ⊙ h_{t-1} + (1 - α) ⊙ f(W x_t + U h_{t-1} + b).

    Each unit i has its own leak α_i = 1 - 1/τ_i, with time constants τ spread geometrically
    from ``tau_min`` to ``tau_max`` steps (several time scales in one layer, as in
    Bengio, Boulanger-Lewandowski, Pascanu 2013, "Advances in optimizing recurrent networks").
    ``learn_alpha`` makes α a learned parameter (σ of a logit) initialised at that spread.

    Jaeger, Lukoševičius, Popovici, Siewert (2007), Neural Networks 20(3).

    Shapes: x (B, T, input_size) -> y (B, T, hidden_size * directions).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        tau_min: float = 1.0,
        tau_max: float = 100.0,
        learn_alpha: bool = False,
        activation: str = "tanh",
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout)
        if math.isnan(tau_min) or math.isnan(tau_max):
            raise ValueError("leaky: tau_min and tau_max must be numbers")
        self.build_cells(lambda width, _: LeakyCell(width, hidden_size, tau_min, tau_max, learn_alpha, activation))
