"""Ctrl-C during ``recur fit``: finish the running step, save ``last.ckpt``, stop, say how to resume.

Lightning's own answer to Ctrl-C (``KeyboardInterrupt`` anywhere, then ``sys.exit(1)``) saves nothing,
so every step since the last validation is lost, and the exit status does not say "interrupted". Here
the first Ctrl-C (SIGINT) while training asks for a stop: at the end of the first training batch that
completes an optimiser step (where Lightning's own step-interval checkpoints are taken, so the resume is
exact), ``last.ckpt`` is written and :class:`TrainingStopped` ends the run. With several processes
(DDP) every rank is signalled separately; they agree, at each such step, on whether any of them was,
so all stop at the same step, and rank 0 alone speaks. A second Ctrl-C stops at once, saving nothing
more. Ctrl-C before training starts (set-up, the sanity check) is an ordinary ``KeyboardInterrupt``.

Each process that trains handles its own signal: ``ddp`` (the launcher re-runs the command), torchrun
and SLURM are covered; under ``ddp_spawn`` the stop happens, but the launching process sees only its
workers' failure.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from .checkpoints import BestAndLast

NOTICE = (
    "\nrecur fit: Ctrl-C: stopping after this training step and saving checkpoints/last.ckpt "
    "(Ctrl-C again stops at once, without saving)\n"
)


class TrainingStopped(Exception):
    """Raised inside the trainer to end a run stopped by Ctrl-C; ``last.ckpt`` holds it (``path``,
    ``None`` without a checkpoint callback) at optimiser step ``step``."""

    def __init__(self, step: int, path: str | None):
        super().__init__(f"stopped at step {step}")
        self.step, self.path = step, path


class TrainingInterrupted(KeyboardInterrupt):
    """What a stopped :func:`toolkit.train.cli.fit` raises: still a ``KeyboardInterrupt`` for its caller
    (``recur`` exits 130), with a message that says where the run stands and how to resume it."""


class StopOnInterrupt(Callback):
    """Turn the first Ctrl-C while training into a stop at a step boundary with ``last.ckpt`` saved
    (see the module docstring). The SIGINT handler is installed for ``fit`` in the main thread only
    (signals reach no other) and the previous one is put back when the run ends, however it ends."""

    def __init__(self):
        self.requested = False
        self._training = False
        self._previous: Any = None
        self._installed = False
        self._step_at_batch_start = 0
        self._rank_zero = True

    # --- the handler ---------------------------------------------------------------------------
    def _on_sigint(self, signum: int, frame: Any) -> None:
        if not self._training or self.requested:
            self._restore()
            raise KeyboardInterrupt
        self.requested = True
        if self._rank_zero:  # every process of a DDP run gets the Ctrl-C; one notice is enough
            os.write(2, NOTICE.encode())  # print() is not safe here: the signal may interrupt another print

    def _restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.requested = False
        self._rank_zero = trainer.is_global_zero
        if stage == "fit" and threading.current_thread() is threading.main_thread() and not self._installed:
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._training = False
        self._restore()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._training = False
        self._restore()

    # --- training --------------------------------------------------------------------------------
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._training = True

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._training = False

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # only where an optimiser step was just taken (not inside gradient accumulation, nor after a
        # skipped step); every rank sees the same steps, so the agreement below is reached by all
        if trainer.global_step == self._step_at_batch_start:
            return
        stop = self.requested
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        checkpoint = trainer.checkpoint_callback
        path = checkpoint.write_last(trainer) if isinstance(checkpoint, BestAndLast) else None
        raise TrainingStopped(trainer.global_step, path)
