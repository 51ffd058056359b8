"""Sequence layers. Every layer is built by name::

    from toolkit import nn as rnn
    layer = rnn.build("res_indrnn", input_size=80, hidden_size=256, num_layers=5)
    y, state = layer(x, lengths)      # x (B, T, 80) -> y (B, T, 256)

See :mod:`toolkit.nn.base` for the contract every layer keeps.
"""

# isort: off
# registration order is the order `recur layers` lists them in
from . import indrnn, res_indrnn, dense_indrnn, irnn, baselines  # noqa: F401
from . import minimalrnn, cfn, leaky, delay, clockwork  # noqa: F401

# isort: on
from .base import RecurrentLayer, detach_state, map_state, select_state
from .registry import available, build, count_params, info, num_params, options, width_for_params

__all__ = [
    "RecurrentLayer",
    "available",
    "build",
    "count_params",
    "detach_state",
    "info",
    "map_state",
    "num_params",
    "options",
    "select_state",
    "width_for_params",
]
