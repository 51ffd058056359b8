"""Layers by name: ``build("res_indrnn", input_size=80, hidden_size=256, num_layers=4)``."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    name: str
    cls: type
    equation: str
    paper: str
    renamed: dict[str, str] = field(default_factory=dict, compare=False)  # old option name -> current one


_REGISTRY: dict[str, LayerInfo] = {}
_COMMON = ("input_size", "hidden_size", "num_layers", "bidirectional", "dropout")


def register(name: str, equation: str, paper: str, renamed: dict[str, str] | None = None):
    """Class decorator that makes a layer buildable by ``name``.

    ``renamed`` maps old option names to current ones: :func:`build` still accepts an old name
    (configs and checkpoints written before the rename) with a ``DeprecationWarning``.
    """

    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"layer name {name!r} registered twice")
        _REGISTRY[name] = LayerInfo(name, cls, equation, paper, dict(renamed or {}))
        cls.layer_name = name
        return cls

    return wrap


def available() -> list[str]:
    """Names accepted by :func:`build`, in registration order."""
    return list(_REGISTRY)


def info(name: str) -> LayerInfo:
    if name not in _REGISTRY:
        raise ValueError(f"unknown layer {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def options(name: str) -> list[str]:
    """The layer-specific options ``build`` accepts for ``name`` (beyond the common ones)."""
    sig = inspect.signature(info(name).cls.__init__)
    return [p for p in sig.parameters if p not in ("self", *_COMMON)]


def build(
    name: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    **opts,
) -> nn.Module:
    """Build the recurrent layer called ``name``.

    Every layer maps ``x (B, T, input_size)`` and ``lengths (B,)`` to
    ``y (B, T, hidden_size * (2 if bidirectional else 1))`` and a state.
    Unknown names or options raise ``ValueError``; an option's old name (``LayerInfo.renamed``)
    is translated with a ``DeprecationWarning``.
    """
    layer = info(name)
    opts = _translate_renamed(layer, opts)
    unknown = sorted(set(opts) - set(options(name)))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for layer {name!r}; "
            f"valid options: {', '.join(options(name)) or 'none'}"
        )
    for key, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {key} must be a positive integer, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
    return layer.cls(
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
        **opts,
    )


def _translate_renamed(layer: LayerInfo, opts: dict) -> dict:
    if not layer.renamed or not set(opts) & set(layer.renamed):
        return opts
    opts = dict(opts)
    for old, new in layer.renamed.items():
        if old not in opts:
            continue
        if new in opts:
            raise ValueError(f"{layer.name}: give {new!r} only ({old!r} is its old name), not both")
        warnings.warn(
            f"{layer.name}: option {old!r} is now called {new!r}; {old!r} will stop working",
            DeprecationWarning,
            stacklevel=3,
        )
        opts[new] = opts.pop(old)
    return opts


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def num_params(name: str, input_size: int, hidden_size: int, num_layers: int = 1, **opts) -> int:
    """Parameter count of a layer, built on the meta device (no memory is allocated)."""
    with torch.device("meta"):
        return count_params(build(name, input_size, hidden_size, num_layers, **opts))


def width_for_params(
    name: str, budget: int, input_size: int, num_layers: int = 1, tolerance: float = 0.02, **opts
) -> int:
    """The hidden size whose parameter count is closest to ``budget`` (and within ``tolerance``).

    Used to compare every model with an LSTM of the same size.
    """
    lo, hi = 1, 2
    while num_params(name, input_size, hi, num_layers, **opts) < budget:
        lo, hi = hi, hi * 2
        if hi > 1 << 20:
            raise ValueError(f"{name}: no width reaches {budget} parameters")
    while hi - lo > 1:  # smallest width with count >= budget lies in (lo, hi]
        mid = (lo + hi) // 2
        if num_params(name, input_size, mid, num_layers, **opts) >= budget:
            hi = mid
        else:
            lo = mid
    best = min((lo, hi), key=lambda h: abs(num_params(name, input_size, h, num_layers, **opts) - budget))
    got = num_params(name, input_size, best, num_layers, **opts)
    if abs(got - budget) > tolerance * budget:
        raise ValueError(f"{name}: closest width {best} has {got} parameters, more than {tolerance:.0%} from {budget}")
    return best
