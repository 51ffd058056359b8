"""What ``recur fit`` prints while it trains: one line per validation run, and one for the test set.

A progress bar redraws one line, which only a terminal (or a notebook) shows as such; written into a log
(``recur fit ... > log 2>&1``, nohup, a recipe stage) every redraw is kept and the log is unreadable. So
the bar is drawn only where it can redraw (:func:`interactive`), and each validation run prints one
line, bar or not::

    step 400 (epoch 3): val/cer 20.10%  val/loss 1.234  val/wer 45.60%  [0:02:13]

WER and CER are printed as percentages, as ``recur decode`` prints them.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from .metrics_file import MetricsFile

# figures the tasks log as fractions, printed as percentages (as `recur decode` prints WER and CER)
FRACTIONS = ("wer", "cer")
# figures the tasks log as percentages already (SeqTask's classification error)
PERCENTAGES = ("err",)


def interactive() -> bool:
    """Whether a progress bar can redraw in place: standard output (where Lightning draws it) is a
    terminal, or a notebook runs the code."""
    return sys.stdout.isatty() or "ipykernel" in sys.modules


def format_figure(name: str, value: float) -> str:
    """``"val/wer 12.34%"``, ``"val/loss 1.234"``."""
    unit = name.rsplit("/", 1)[-1]
    if unit in FRACTIONS:
        return f"{name} {100 * value:.2f}%"
    if unit in PERCENTAGES:
        return f"{name} {value:.2f}%"
    return f"{name} {value:.4g}"


def figures_line(figures: dict[str, float]) -> str:
    """The figures, by name, two spaces apart."""
    return "  ".join(format_figure(name, value) for name, value in sorted(figures.items()))


def clock(seconds: float) -> str:
    """``"1:02:03"``."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _figures(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    out = {}
    for name, value in metrics.items():
        if name.startswith(prefix):
            value = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[name] = float(value)
    return out


class ValidationLines(Callback):
    """Print one line per validation run (step, epoch, the ``val/`` figures, training time so far) and one
    for the test run; rank zero only. Training time is the metrics file's (:class:`MetricsFile`, which
    counts the earlier sessions of a resumed run), else this session's."""

    def __init__(self):
        self._t0 = time.perf_counter()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._t0 = time.perf_counter()

    def _elapsed(self, trainer: Trainer) -> float:
        for callback in trainer.callbacks:
            if isinstance(callback, MetricsFile):
                return callback.elapsed()
        return time.perf_counter() - self._t0

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit" or not trainer.is_global_zero:
            return
        figures = figures_line(_figures(trainer.callback_metrics, "val/"))
        self._print(
            trainer,
            f"step {trainer.global_step} (epoch {trainer.current_epoch}): {figures}  [{clock(self._elapsed(trainer))}]",
        )

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        source = f" ({Path(trainer.ckpt_path).name})" if trainer.ckpt_path else ""
        self._print(trainer, f"test{source}: {figures_line(_figures(trainer.callback_metrics, 'test/'))}")

    @staticmethod
    def _print(trainer: Trainer, line: str) -> None:
        bar = trainer.progress_bar_callback
        if bar is not None and bar.is_enabled:
            bar.print(line)  # above the bar, which stays where it is
        else:
            print(line, flush=True)
