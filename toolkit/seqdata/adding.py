"""The adding problem: remember two marked numbers across T steps and output their sum.

Each sequence is (T, 2): channel 0 holds values drawn uniformly from [0, 1], channel 1 is a
marker with exactly two ones, one at a uniformly random step of the first half and one of the
second half (the IndRNN paper's setup, after Hochreiter & Schmidhuber 1997). The target is the sum
of the two marked values. Predicting the mean sum (1.0) gives MSE = Var(U1 + U2) = 1/6 ≈ 0.167,
the baseline a model must beat.
"""

from __future__ import annotations

import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from toolkit.errors import ConfigError
from toolkit.train.resumable import ResumableLoader

BASELINE_MSE = 1.0 / 6.0


def adding_example(seq_len: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One sequence: x (T, 2) float32, y () float32 = sum of the two marked values."""
    if seq_len < 2:
        raise ConfigError(f"adding problem: seq_len must be at least 2, got {seq_len}")
    values = torch.rand(seq_len, generator=generator)
    half = seq_len // 2
    first = int(torch.randint(0, half, (), generator=generator))
    second = int(torch.randint(half, seq_len, (), generator=generator))
    marker = torch.zeros(seq_len)
    marker[first] = 1.0
    marker[second] = 1.0
    return torch.stack([values, marker], dim=1), values[first] + values[second]


class AddingDataset(Dataset):
    """``size`` adding-problem sequences of length ``seq_len``; item i depends only on (seed, i).

    Items are generated on access, so a training set of millions of sequences costs no memory
    and any item can be regenerated exactly (resume, debugging).
    """

    def __init__(self, seq_len: int, size: int, seed: int = 0):
        if size < 1:
            raise ConfigError(f"adding problem: size must be positive, got {size}")
        self.seq_len, self.size, self.seed = seq_len, size, seed

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(index)
        g = torch.Generator().manual_seed(self.seed * 1_000_000_007 + index)
        x, y = adding_example(self.seq_len, g)
        return {"x": x, "y": y}


class AddingData(LightningDataModule):
    """Train / dev / test sets of the adding problem; the three use disjoint seeds.

    Args:
        seq_len: T.
        batch_size: the IndRNN paper uses 50.
        train_size: sequences per "epoch" (fresh data: make it at least steps x batch size).
        val_size, test_size: fixed evaluation sets.
        seed: base seed; train uses it, dev seed+1, test seed+2.
    """

    def __init__(
        self,
        seq_len: int = 100,
        batch_size: int = 50,
        train_size: int = 1_000_000,
        val_size: int = 1000,
        test_size: int = 1000,
        seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.train_set = AddingDataset(seq_len, train_size, seed=3 * seed)
        self.val_set = AddingDataset(seq_len, val_size, seed=3 * seed + 1)
        self.test_set = AddingDataset(seq_len, test_size, seed=3 * seed + 2)

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        # items are already i.i.d. draws, so no shuffling is needed
        return ResumableLoader(self.train_set, h.batch_size, shuffle=False, num_workers=h.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.hparams.batch_size, num_workers=self.hparams.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, self.hparams.batch_size, num_workers=self.hparams.num_workers)
