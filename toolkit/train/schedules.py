"""Learning-rate schedules beyond milestones: linear warmup, the IndRNN paper's plateau rule
(reload the best checkpoint and multiply the rate by 0.2 when the dev figure stops improving), and
a linear decay over a wall-clock budget (``trainer.max_time``)."""

from __future__ import annotations

import math

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import Timer
from torch.optim.lr_scheduler import LambdaLR

from toolkit.errors import ConfigError, UserError


def warmup_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int) -> dict:
    """Lightning scheduler config: the rate rises linearly over ``warmup_steps`` optimiser steps, then stays."""
    if warmup_steps < 0:
        raise ConfigError(f"warmup_steps must be >= 0, got {warmup_steps}")

    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}


class PlateauReload(Callback):
    """After ``patience`` validations without improvement of ``monitor``, load the best checkpoint's
    weights and multiply every learning rate by ``factor`` (Li et al. 2018, IndRNN, section 4).
    Stops training once the rate would fall below ``min_lr``. Its counters live in checkpoints."""

    def __init__(self, monitor: str, mode: str = "min", patience: int = 2, factor: float = 0.2, min_lr: float = 1e-6):
        if mode not in ("min", "max"):
            raise ConfigError(f"mode must be 'min' or 'max', got {mode!r}")
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


class BudgetDecay(Callback):
    """Linear decay of the learning rate over the run's wall-clock budget, ``trainer.max_time``:

        lr(t) = lr_sched(step) * (1 - (1 - final) * min(1, t / max_time))

    where ``lr_sched`` is the task's warmup schedule and ``t`` the training time so far (restored
    on resume, as the budget is). Li, Yumer and Ramanan (2020), "Budgeted Training: Rethinking Deep
    Neural Network Training Under Resource Constraints", ICLR: with a fixed budget, a rate that
    reaches zero when the budget ends beats a constant one. A time budget makes the rate depend on
    the machine's speed: runs are reproducible per machine and load, not per epoch.

    Needs ``trainer.max_time`` and a ``LambdaLR`` schedule (``warmup_steps`` > 0, with or without
    ``lr_milestones``); the plateau rule may be combined with it (it scales the base rates).
    """

    def __init__(self, final: float = 0.0):
        if not 0.0 <= final <= 1.0:
            raise ConfigError(f"final must be in [0, 1], got {final}")
        self.final = final
        self.factor = 1.0
        self._timer: Timer | None = None
        self._schedulers: list[LambdaLR] = []

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        if self._timer is None or self._timer.time_remaining() is None:
            raise UserError("BudgetDecay decays over trainer.max_time: set it (e.g. --trainer.max_time 00:00:40:00)")
        self._schedulers = [c.scheduler for c in trainer.lr_scheduler_configs if isinstance(c.scheduler, LambdaLR)]
        if not self._schedulers:
            raise UserError("BudgetDecay scales the warmup schedule: set warmup_steps > 0")
        for sched in self._schedulers:
            # the schedule's own factor times the budget's, so the decay holds at every scheduler step.
            # Plain functions: LambdaLR leaves them out of checkpoints (the budget lives in the Timer's).
            sched.lr_lambdas = [self._scaled(f) for f in sched.lr_lambdas]

    def _scaled(self, inner):
        def factor(step: int) -> float:
            return inner(step) * self.factor

        return factor

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch, batch_idx: int) -> None:
        elapsed, remaining = self._timer.time_elapsed("train"), self._timer.time_remaining("train")
        progress = min(1.0, elapsed / max(elapsed + remaining, 1e-9))
        self.factor = 1.0 - (1.0 - self.final) * progress
        for sched in self._schedulers:
            for group, base, fn in zip(sched.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True):
                group["lr"] = base * fn(sched.last_epoch)
