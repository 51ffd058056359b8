"""Bounds on parameter magnitudes (IndRNN's |u| <= u_max), kept after every optimiser step.

A module that bounds some of its parameters subclasses :class:`AbsBounded` and answers
:meth:`AbsBounded.abs_bounds` from its own attributes (e.g. ``{"u": self.u_max}``). The bound is
plain module state, so it survives ``copy.deepcopy`` (an EMA copy, ``torch.optim.swa_utils.AveragedModel``),
pickling, ``load_state_dict`` (also with ``assign=True``) and ``.to()``: a parameter's own Python
attributes survive none of the first two.

One global optimiser post-step hook, installed with the first bounded module, clamps every bounded
parameter that the optimiser has just updated, whatever optimiser or training loop runs it.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.optim.optimizer import register_optimizer_step_post_hook

_LIVE: weakref.WeakSet[AbsBounded] = weakref.WeakSet()
_HOOK = None


def own_parameter(module: nn.Module, name: str) -> nn.Parameter:
    """``module``'s parameter called ``name``: the stored one, also behind a parametrisation (DropConnect)."""
    if parametrize.is_parametrized(module, name):
        return module.parametrizations[name].original
    p = module._parameters.get(name)
    if p is None:
        raise AttributeError(f"{type(module).__name__} has no parameter {name!r}")
    return p


def _clamp_after_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
    by_bound: dict[float, list[torch.Tensor]] = {}
    for module in list(_LIVE):
        for name, bound in module.abs_bounds().items():
            p = own_parameter(module, name)
            if id(p) in stepped:
                by_bound.setdefault(float(bound), []).append(p)
    with torch.no_grad():
        for bound, params in by_bound.items():  # one bound for a whole stack: two fused launches
            torch._foreach_clamp_min_(params, -bound)
            torch._foreach_clamp_max_(params, bound)


class AbsBounded(nn.Module):
    """Mixin: keep ``|p| <= bound`` for each ``name -> bound`` of :meth:`abs_bounds` after every
    optimiser step. Call :meth:`track_bounds` at the end of ``__init__``; copies track themselves."""

    def abs_bounds(self) -> dict[str, float]:
        """Own parameter name -> bound on its magnitude."""
        raise NotImplementedError

    def track_bounds(self) -> None:
        global _HOOK
        _LIVE.add(self)
        if _HOOK is None:
            _HOOK = register_optimizer_step_post_hook(_clamp_after_step)

    def __setstate__(self, state: dict) -> None:
        # copy.deepcopy and unpickling rebuild a module through here, never through __init__
        super().__setstate__(state)
        self.track_bounds()


def clamp_bounds_(module: nn.Module) -> None:
    """Clamp every bounded parameter inside ``module`` now (e.g. after editing weights by hand)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, AbsBounded):
                for name, bound in m.abs_bounds().items():
                    own_parameter(m, name).clamp_(-bound, bound)
