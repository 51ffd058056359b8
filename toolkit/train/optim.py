"""Optimisers and step-wise learning-rate schedules, by name, for every task."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    name: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    lr_milestones: Sequence[int] | None = None,
    lr_gamma: float = 0.1,
    warmup_steps: int = 0,
) -> dict:
    """Lightning's ``configure_optimizers`` answer: an optimiser and, if ``lr_milestones`` (optimiser
    steps) are given, a schedule that multiplies the rate by ``lr_gamma`` at each milestone;
    otherwise, with ``warmup_steps``, a linear warmup to ``lr``.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    optimizer = OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)
    if not lr_milestones:
        if warmup_steps:
            from .schedules import warmup_scheduler

            return {"optimizer": optimizer, "lr_scheduler": warmup_scheduler(optimizer, warmup_steps)}
        return {"optimizer": optimizer}
    milestones = sorted(int(m) for m in lr_milestones)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=lr_gamma)
    # interval "step": milestones count optimiser steps, the unit every recipe budget is stated in
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
