"""Sequence classification and regression: one recurrent encoder, a read-out, a linear head.

Used for the long-memory benchmarks of the IndRNN paper (adding problem, pixel MNIST). Batches are
dicts: ``x`` (B, T, F) float, ``y`` (B,) long class ids (``loss="ce"``) or (B,) / (B, K) float
targets (``loss="mse"``), and optionally ``lengths`` (B,) long (all T when absent).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torchmetrics import MeanMetric, MeanSquaredError
from torchmetrics.classification import MulticlassAccuracy

import toolkit.nn as rnn
from toolkit.errors import ConfigError
from toolkit.nn.base import last_valid, length_mask
from toolkit.train.optim import build_optimizer

STAGES = ("train", "val", "test")


def _key(stage: str) -> str:
    # "train" cannot be a ModuleDict key: it would shadow nn.Module.train
    return f"{stage}_"


class SeqTask(LightningModule):
    """Encoder ``toolkit.nn.build(encoder, ...)`` -> read-out over time -> linear head.

    Args:
        input_size: features per step (2 for the adding problem, 1 for pixel MNIST).
        num_outputs: classes (``loss="ce"``) or regression targets (``loss="mse"``).
        loss: ``"mse"`` (regression; logs val/mse) or ``"ce"`` (classification; logs val/acc, val/err).
        encoder: the recurrent layer, by name: {layers} (``recur layers`` gives each one's
            equation, paper and size); built with ``toolkit.nn.build``.
        hidden_size: encoder width; ignored when ``param_budget`` is given.
        num_layers: encoder depth.
        encoder_opts: layer-specific options (e.g. ``{"gamma": 2.0, "max_len": 1000}`` for indrnn).
        param_budget: if set, the width is chosen by ``toolkit.nn.width_for_params`` so the encoder
            has about this many parameters (equal-size comparison with an LSTM).
        readout: ``"last"`` (state at the last valid step) or ``"mean"`` (mean over valid steps).
        dropout: between encoder layers (the layer's own option).
        optimizer, lr, weight_decay, lr_milestones, lr_gamma: see :func:`toolkit.train.optim.build_optimizer`.
    """

    item_unit = "sequences"

    def __init__(
        self,
        input_size: int,
        num_outputs: int,
        loss: Literal["mse", "ce"] = "ce",
        encoder: str = "indrnn",
        hidden_size: int = 128,
        num_layers: int = 2,
        encoder_opts: dict[str, Any] | None = None,
        param_budget: int | None = None,
        readout: Literal["last", "mean"] = "last",
        dropout: float = 0.0,
        optimizer: str = "adam",
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        lr_milestones: list[int] | None = None,
        lr_gamma: float = 0.1,
    ):
        super().__init__()
        self.save_hyperparameters()
        opts = dict(encoder_opts or {})
        if encoder not in rnn.available():
            raise ConfigError(f"unknown encoder {encoder!r}; available: {', '.join(rnn.available())}")
        if param_budget is not None:
            hidden_size = rnn.width_for_params(encoder, param_budget, input_size, num_layers, **opts)
        self.hidden_size = hidden_size
        self.encoder = rnn.build(encoder, input_size, hidden_size, num_layers, dropout=dropout, **opts)
        self.head = nn.Linear(self.encoder.output_size, num_outputs)
        self.loss_name, self.readout = loss, readout
        if loss == "ce":
            self.monitor, self.monitor_mode = "val/err", "min"
            self.scores = nn.ModuleDict({_key(s): MulticlassAccuracy(num_outputs, average="micro") for s in STAGES})
        elif loss == "mse":
            self.monitor, self.monitor_mode = "val/mse", "min"
            self.scores = nn.ModuleDict({_key(s): MeanSquaredError() for s in STAGES})
        else:
            raise ConfigError(f"loss must be 'mse' or 'ce', got {loss!r}")
        # NaN must surface (a diverged model), not be dropped and read as a low loss
        self.losses = nn.ModuleDict({_key(s): MeanMetric(nan_strategy="disable") for s in STAGES})

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (B, T, input_size), lengths (B,) -> outputs (B, num_outputs)."""
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
        y, _ = self.encoder(x, lengths)
        if self.readout == "last":
            feats = last_valid(y, lengths)
        else:
            mask = length_mask(lengths, y.shape[1]).unsqueeze(-1).to(y.dtype)
            feats = (y * mask).sum(1) / lengths.unsqueeze(-1).to(y.dtype)
        return self.head(feats)

    def count_items(self, batch: dict[str, Tensor]) -> int:
        return int(batch["x"].shape[0])

    def step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        """The one step train/val/test share: loss, then the stage's torchmetrics (DDP-correct)."""
        out = self(batch["x"], batch.get("lengths"))
        target = batch["y"]
        size = target.shape[0]
        if self.loss_name == "ce":
            loss = F.cross_entropy(out, target)
            self.scores[_key(stage)](out, target)
            name = "acc"
        else:
            out = out.view_as(target)
            loss = F.mse_loss(out, target)
            self.scores[_key(stage)](out.detach(), target)
            name = "mse"
        self.losses[_key(stage)](loss.detach(), weight=size)
        on_step = stage == "train"
        self.log(f"{stage}/loss", self.losses[_key(stage)], on_step=False, on_epoch=True, batch_size=size)
        self.log(
            f"{stage}/{name}", self.scores[_key(stage)], on_step=on_step, on_epoch=True, batch_size=size, prog_bar=True
        )
        if on_step:
            self.log("train/step_loss", loss.detach(), on_step=True, on_epoch=False, batch_size=size)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self.step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_error("val")

    def on_test_epoch_end(self) -> None:
        self._log_error("test")

    def _log_error(self, stage: str) -> None:
        if self.loss_name == "ce":
            # error rate in percent, the figure the papers tabulate
            self.log(f"{stage}/err", 100.0 * (1.0 - self.scores[_key(stage)].compute()), prog_bar=stage == "val")

    def configure_optimizers(self) -> dict:
        h = self.hparams
        return build_optimizer(self, h.optimizer, h.lr, h.weight_decay, h.lr_milestones, h.lr_gamma)


# the help of `recur fit` (read from this docstring) names the layers the registry holds
if SeqTask.__doc__:  # None under python -OO
    SeqTask.__doc__ = SeqTask.__doc__.replace("{layers}", ", ".join(rnn.available()))
