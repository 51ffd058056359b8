"""Optimisers and step-wise learning-rate schedules, by name, for every task."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from toolkit.errors import ConfigError

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

# torch's normalisation layers; toolkit layers declare theirs through ``weight_decay_exempt``
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)


def _declared(module: nn.Module, name: str) -> nn.Parameter:
    if parametrize.is_parametrized(module, name):  # e.g. DropConnect on IndRNN's u: the stored original
        return module.parametrizations[name].original
    p = module._parameters.get(name)
    if p is None:
        raise ValueError(f"{type(module).__name__}.weight_decay_exempt names {name!r}, which is not its parameter")
    return p


def no_decay_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model`` that weight decay must leave alone, in ``model.parameters()`` order:

    * every parameter with at most one dimension: biases, normalisation scales and shifts, and
      per-unit recurrent weights (IndRNN's u, a leaky unit's leak), which decay would pull toward 0
      and so shorten the units' memory (Li et al. 2018 exclude u);
    * every parameter of a torch normalisation layer (``NORM_TYPES``), whatever its shape;
    * every parameter a module names in its ``weight_decay_exempt`` (a tuple of its own parameter
      names): ``IndRNNCell`` declares ``u``, ``MaskedBatchNorm`` its weight and bias, so the
      intent does not rest on shapes alone.
    """
    exempt: set[int] = set()
    for module in model.modules():
        if isinstance(module, NORM_TYPES):
            exempt.update(id(p) for p in module.parameters(recurse=False))
        for name in getattr(module, "weight_decay_exempt", ()):
            exempt.add(id(_declared(module, name)))
    return [p for p in model.parameters() if p.dim() <= 1 or id(p) in exempt]


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimiser groups: ``weight_decay`` for the rest, 0 for :func:`no_decay_parameters`.
    Every parameter of ``model`` lands in exactly one (tied weights once); an empty group is left out."""
    exempt = {id(p) for p in no_decay_parameters(model)}
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if id(p) not in exempt], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) in exempt], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def schedule_factor(step: int, warmup_steps: int = 0, milestones: Sequence[int] = (), gamma: float = 0.1) -> float:
    """The learning rate of optimiser step ``step`` (from 0) over the configured rate:
    ``min(1, (step + 1) / warmup_steps) * gamma ** (number of milestones <= step)``."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return warm * gamma ** bisect_right(sorted(milestones), step)


def build_optimizer(
    model: nn.Module | Iterable[torch.nn.Parameter] | Iterable[dict],
    name: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    lr_milestones: Sequence[int] | None = None,
    lr_gamma: float = 0.1,
    warmup_steps: int = 0,
) -> dict:
    """Lightning's ``configure_optimizers`` answer: an optimiser and, if asked, a per-step schedule.

    ``model``: a module, whose parameters are split by :func:`parameter_groups` (no weight decay on
    biases, normalisation parameters and per-unit recurrent weights); or parameters / parameter
    groups, given to the optimiser as they are.

    Schedule, counted in optimiser steps (the unit every recipe budget is stated in): a linear
    warmup to ``lr`` over ``warmup_steps``, and the rate multiplied by ``lr_gamma`` at each of
    ``lr_milestones``; both compose (see :func:`schedule_factor`; milestones count from step 0, so
    one inside the warmup scales it too).
    """
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if lr <= 0:
        raise ConfigError(f"lr must be positive, got {lr}")
    if warmup_steps < 0:
        raise ConfigError(f"warmup_steps must be >= 0, got {warmup_steps}")
    params = parameter_groups(model, weight_decay) if isinstance(model, nn.Module) else model
    optimizer = OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)
    if not lr_milestones:
        if warmup_steps:
            from .schedules import warmup_scheduler

            return {"optimizer": optimizer, "lr_scheduler": warmup_scheduler(optimizer, warmup_steps)}
        return {"optimizer": optimizer}
    milestones = sorted(int(m) for m in lr_milestones)
    if warmup_steps:
        # one LambdaLR for both, so BudgetDecay and PlateauReload (which scale LambdaLR rates) still apply
        def factor(step: int) -> float:
            return schedule_factor(step, warmup_steps, milestones, lr_gamma)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    else:
        # milestones alone keep MultiStepLR, so checkpoints written with it still resume
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=lr_gamma)
    # interval "step": milestones count optimiser steps, the unit every recipe budget is stated in
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
