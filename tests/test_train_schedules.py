"""Learning-rate rules that act during training: the IndRNN plateau rule and the budget decay."""

import lightning.pytorch.callbacks.timer as timer_module
import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from toolkit.errors import UserError
from toolkit.train.optim import build_optimizer
from toolkit.train.schedules import BudgetDecay, PlateauReload


class Regression(LightningModule):
    """w -> 5 by SGD; validation logs a scripted value per epoch (so the test decides what improves)."""

    def __init__(self, val_script=(), lr=0.1, warmup_steps=0, milestones=None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.val_script, self.lr, self.warmup_steps, self.milestones = list(val_script), lr, warmup_steps, milestones

    def training_step(self, batch, batch_idx):
        return ((self.w - 5.0) ** 2).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/score", float(self.val_script[self.current_epoch]))

    def configure_optimizers(self):
        return build_optimizer([self.w], "sgd", self.lr, 0.0, self.milestones, 0.1, self.warmup_steps)


def loader(n):
    return DataLoader(TensorDataset(torch.zeros(n)), batch_size=1)


class Record(Callback):
    """The rate each optimiser step used, and the weight after each validation."""

    def __init__(self):
        self.rates, self.weights = [], []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.rates.append(optimizer.param_groups[0]["lr"])

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.weights.append(float(pl_module.w))


def trainer(tmp_path, callbacks, **kw):
    return Trainer(
        default_root_dir=tmp_path, callbacks=callbacks, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", **kw,
    )


def test_plateau_reloads_the_best_weights_and_cuts_the_rate(tmp_path):
    # epochs 0, 1 improve; 2, 3 do not -> after epoch 3 (patience 2): epoch 1's weights, rate x 0.2
    model = Regression(val_script=[3.0, 2.0, 2.5, 2.6, 9.0, 9.0], lr=0.1)
    record = Record()
    plateau = PlateauReload("val/score", patience=2, factor=0.2)
    best = ModelCheckpoint(dirpath=tmp_path, monitor="val/score", mode="min")
    trainer(tmp_path, [plateau, record, best], max_epochs=5).fit(model, loader(2), loader(1))
    assert record.rates[:8] == [pytest.approx(0.1)] * 8
    assert record.rates[8:] == [pytest.approx(0.02)] * 2  # epoch 4 runs at the cut rate
    assert plateau.reductions == 1 and plateau.best == 2.0
    # epoch 4 starts from epoch 1's weights: two steps at 0.02 from there, not from epoch 3's
    w1 = record.weights[1]
    expected = w1
    for _ in range(2):
        expected -= 0.02 * 2 * (expected - 5.0)
    assert float(model.w) == pytest.approx(expected, rel=1e-5)
    assert float(model.w) != pytest.approx(record.weights[3] - 0.02 * 2 * (record.weights[3] - 5.0), rel=1e-5)


def test_warmup_then_milestones_in_a_run(tmp_path):
    record = Record()
    model = Regression(lr=1.0, warmup_steps=2, milestones=[3])
    trainer(tmp_path, [record], max_steps=5).fit(model, loader(5))
    assert record.rates == pytest.approx([0.5, 1.0, 1.0, 0.1, 0.1])


class FakeClock:
    """Stands in for the Timer's ``time`` module: 6 s of training per optimiser step."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


class Tick(Callback):
    def __init__(self, clock):
        self.clock = clock

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.clock.now += 6.0


@pytest.mark.parametrize("final", [0.0, 0.2])
def test_budget_decay_scales_warmup_linearly_over_max_time(tmp_path, monkeypatch, final):
    clock = FakeClock()
    monkeypatch.setattr(timer_module, "time", clock)
    record = Record()
    model = Regression(lr=1.0, warmup_steps=2)
    # budget 60 s = 10 steps of the fake clock; max_steps stops it first
    run = trainer(tmp_path, [BudgetDecay(final), record, Tick(clock)], max_time="00:00:01:00", max_steps=8)
    run.fit(model, loader(8))
    expected = [min(1.0, (k + 1) / 2) * (1 - (1 - final) * k / 10) for k in range(8)]
    assert record.rates == pytest.approx(expected)
    # the wrapped schedule still checkpoints (and the budget's state is the Timer's, not the schedule's)
    run.save_checkpoint(tmp_path / "x.ckpt")
    state = torch.load(tmp_path / "x.ckpt", weights_only=False)
    assert state["lr_schedulers"][0]["last_epoch"] == 8


def test_budget_decay_needs_max_time_and_a_warmup_schedule(tmp_path):
    with pytest.raises(UserError, match="max_time"):
        trainer(tmp_path, [BudgetDecay()], max_steps=2).fit(Regression(warmup_steps=2), loader(2))
    with pytest.raises(UserError, match="warmup_steps"):
        trainer(tmp_path, [BudgetDecay()], max_time="00:00:01:00", max_steps=2).fit(Regression(), loader(2))
    with pytest.raises(ValueError, match="final"):
        BudgetDecay(final=1.5)
