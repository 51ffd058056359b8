"""Learning-rate schedules beyond milestones: linear warmup, and the IndRNN paper's plateau rule
(reload the best checkpoint and multiply the rate by 0.2 when the dev figure stops improving)."""

from __future__ import annotations

import math

import torch
from lightning.pytorch import Callback, LightningModule, Trainer


def warmup_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int) -> dict:
    """Lightning scheduler config: the rate rises linearly over ``warmup_steps`` optimiser steps, then stays."""
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}


class PlateauReload(Callback):
    """After ``patience`` validations without improvement of ``monitor``, load the best checkpoint's
    weights and multiply every learning rate by ``factor`` (Li et al. 2018, IndRNN, section 4).
    Stops training once the rate would fall below ``min_lr``. Its counters live in checkpoints."""

    def __init__(self, monitor: str, mode: str = "min", patience: int = 2, factor: float = 0.2, min_lr: float = 1e-6):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.patience, self.factor, self.min_lr = monitor, mode, patience, factor, min_lr
        self.best = math.inf if mode == "min" else -math.inf
        self.bad = 0
        self.reductions = 0

    def state_dict(self) -> dict:
        return {"best": self.best, "bad": self.bad, "reductions": self.reductions}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.bad, self.reductions = state["best"], state["bad"], state["reductions"]

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if (value < self.best) if self.mode == "min" else (value > self.best):
            self.best, self.bad = value, 0
            return
        self.bad += 1
        if self.bad < self.patience:
            return
        self.bad = 0
        best_path = getattr(trainer.checkpoint_callback, "best_model_path", "")
        if best_path:
            state = torch.load(best_path, map_location=pl_module.device, weights_only=False)["state_dict"]
            pl_module.load_state_dict(state)
        optimizers = trainer.optimizers
        new_lr = None
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] *= self.factor
                new_lr = group["lr"]
        # keep a warmup/constant LambdaLR from resetting the rate: scale its base rates too
        for config in trainer.lr_scheduler_configs:
            config.scheduler.base_lrs = [lr * self.factor for lr in config.scheduler.base_lrs]
        self.reductions += 1
        if new_lr is not None and new_lr < self.min_lr:
            trainer.should_stop = True
