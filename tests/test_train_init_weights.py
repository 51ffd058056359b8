"""InitWeights: a run starts from another run's weights, and a resumed fine-tuning run keeps its own."""

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from toolkit.errors import UserError
from toolkit.train.init_weights import InitWeights


class Pull(LightningModule):
    """w is pulled towards ``target`` by SGD at rate ``lr`` (0 freezes it)."""

    def __init__(self, target=5.0, lr=0.1, size=1):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(size))
        self.target, self.lr = target, lr

    def training_step(self, batch, batch_idx):
        return ((self.w - self.target) ** 2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD([self.w], lr=self.lr)


def train(module, steps, tmp_path, callbacks=(), ckpt_path=None):
    trainer = Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                      callbacks=list(callbacks))  # fmt: skip
    trainer.fit(module, DataLoader(TensorDataset(torch.zeros(64)), batch_size=1), ckpt_path=ckpt_path)
    return trainer


def test_weights_come_from_the_checkpoint_and_the_optimiser_starts_afresh(tmp_path):
    first = Pull(target=5.0)
    train(first, 10, tmp_path).save_checkpoint(tmp_path / "first.ckpt")
    assert 0.5 < first.w.item() < 5.0

    frozen = Pull(lr=0.0)
    trainer = train(frozen, 3, tmp_path, [InitWeights(tmp_path / "first.ckpt")])
    assert torch.equal(frozen.w, first.w)
    assert trainer.global_step == 3  # a new run: its own step count, not the checkpoint's 10

    moving = Pull(target=-5.0)
    train(moving, 1, tmp_path, [InitWeights(tmp_path / "first.ckpt")])
    # one SGD step from first's weights: w - 0.1 * 2 * (w + 5)
    assert torch.allclose(moving.w, first.w - 0.2 * (first.w + 5.0))


def test_resuming_the_fine_tuning_run_keeps_its_own_weights(tmp_path):
    first = Pull(target=5.0)
    train(first, 10, tmp_path).save_checkpoint(tmp_path / "first.ckpt")
    tuned = Pull(target=-5.0)
    train(tuned, 4, tmp_path, [InitWeights(tmp_path / "first.ckpt")]).save_checkpoint(tmp_path / "tuned.ckpt")

    resumed = Pull(target=-5.0)
    trainer = train(resumed, 6, tmp_path, [InitWeights(tmp_path / "first.ckpt")], ckpt_path=tmp_path / "tuned.ckpt")
    # two more steps from tuned's weights (the restored optimiser's rate 0.1), not from first's
    expected = tuned.w.detach().clone()
    for _ in range(2):
        expected -= 0.2 * (expected + 5.0)
    assert torch.allclose(resumed.w, expected) and trainer.global_step == 6


def test_a_checkpoint_of_another_shape_is_refused_in_one_line(tmp_path):
    first = Pull()
    train(first, 1, tmp_path).save_checkpoint(tmp_path / "first.ckpt")
    with pytest.raises(UserError, match=r"first\.ckpt does not fit this model \(size mismatch for w"):
        train(Pull(size=3), 1, tmp_path, [InitWeights(tmp_path / "first.ckpt")])
    with pytest.raises(UserError, match="no checkpoint"):
        train(Pull(), 1, tmp_path, [InitWeights(tmp_path / "absent")])
