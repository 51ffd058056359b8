"""The two checkpoints every experiment folder keeps: ``checkpoints/last.ckpt`` and ``checkpoints/best.ckpt``."""

from __future__ import annotations

import os

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint


class BestAndLast(ModelCheckpoint):
    """Save ``<exp_dir>/checkpoints/last.ckpt`` after every validation run and when training stops,
    and ``best.ckpt`` for the best dev figure so far.

    Args:
        monitor: the logged figure that picks ``best`` (e.g. ``"val/mse"``). ``None`` takes the
            task's own ``monitor`` attribute, so a recipe need not repeat it.
        mode: ``"min"`` or ``"max"``; ``None`` takes the task's ``monitor_mode`` (default "min").
        every_n_train_steps: also save every n optimiser steps (0: only after validation).
    """

    def __init__(self, monitor: str | None = None, mode: str | None = None, every_n_train_steps: int = 0):
        super().__init__(
            dirpath=None,
            filename="best",
            monitor=monitor,
            mode=mode or "min",
            save_last=True,
            save_top_k=1,
            auto_insert_metric_name=False,
            every_n_train_steps=every_n_train_steps or None,
            enable_version_counter=False,
            # judge after validation, never at train-epoch end: with validation at each epoch end
            # (val_check_interval 1.0) Lightning would otherwise save before the dev figure exists
            save_on_train_epoch_end=False,
        )
        self._mode_given = mode is not None
        self._last_written_at: int | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.dirpath is None:
            # the experiment folder is set in the config; checkpoints never land anywhere else
            self.dirpath = os.path.join(trainer.default_root_dir, "checkpoints")
        if self.monitor is None and getattr(pl_module, "monitor", None):
            self.monitor = pl_module.monitor
            if not self._mode_given:
                # re-run the parent's mode set-up so best_model_score starts at +inf / -inf correctly
                self._ModelCheckpoint__init_monitor_mode(getattr(pl_module, "monitor_mode", "min"))
        super().setup(trainer, pl_module, stage)

    def _save_last_checkpoint(self, trainer: Trainer, monitor_candidates: dict) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_written_at = trainer.global_step

    def _refresh_last(self, trainer: Trainer) -> None:
        # Lightning writes last.ckpt only when a top-k checkpoint was written at the same step, so a
        # dev figure that stops improving would leave last.ckpt behind and a resume would replay steps.
        if trainer.state.fn != "fit" or trainer.sanity_checking or trainer.fast_dev_run:
            return
        if self._last_written_at != trainer.global_step and trainer.global_step > 0:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def write_last(self, trainer: Trainer) -> str | None:
        """Write ``last.ckpt`` now (unless it was written at this step already), e.g. when training is
        stopped between validations; returns its path."""
        if self.dirpath is None:
            return None
        if self._last_written_at != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        return self.last_path

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._refresh_last(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # also when training stops between validations (max_time, max_steps): resume from where it stopped
        self._refresh_last(trainer)

    @property
    def last_path(self) -> str | None:
        """Where ``last.ckpt`` lives once ``setup`` has run."""
        return None if self.dirpath is None else os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + ".ckpt")
