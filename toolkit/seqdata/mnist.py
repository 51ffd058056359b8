"""Pixel-by-pixel MNIST (T = 784, one grey value per step) and its permuted variant.

Reads the files as distributed: the IDX pair ``t10k-images-idx3-ubyte.gz`` /
``t10k-labels-idx1-ubyte.gz`` (and ``train-*`` when present) and, for this project's 5,000-image
training sample, ``mnist_5k.csv.gz`` (785 comma-separated integers per line: 784 pixels 0-255,
then the label).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from toolkit.errors import UserError
from toolkit.train.resumable import ResumableLoader

PIXELS = 784


def _require(path: Path) -> Path:
    if not path.is_file():
        raise UserError(
            f"MNIST file missing: {path}; point data.root at a folder holding the MNIST files "
            "(t10k-*-ubyte.gz, and train-*-ubyte.gz or mnist_5k.csv.gz)"
        )
    return path


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array: images (N, 28, 28) or labels (N,)."""
    path = _require(Path(path))
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"{path}: holds {body.size} bytes of data, its header promises {int(np.prod(dims))}")
    return body.reshape(dims)


def read_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """``mnist_5k.csv.gz``-style file -> (images (N, 784) uint8, labels (N,) int64, lines skipped).

    A malformed line (wrong column count, values out of range) is skipped and counted.
    """
    path = _require(Path(path))
    images, labels, skipped = [], [], 0
    with _open(path) as f:
        for raw in f:
            line = raw.decode("ascii", errors="replace").strip()
            if not line:
                continue
            try:
                values = np.array([int(v) for v in line.split(",")], dtype=np.int64)
            except ValueError:
                skipped += 1
                continue
            if values.size != PIXELS + 1 or values[:PIXELS].min() < 0 or values[:PIXELS].max() > 255 \
                    or not 0 <= values[PIXELS] <= 9:
                skipped += 1
                continue
            images.append(values[:PIXELS].astype(np.uint8))
            labels.append(values[PIXELS])
    if not images:
        raise UserError(f"{path}: no usable lines (expected 785 comma-separated integers per line)")
    return np.stack(images), np.array(labels, dtype=np.int64), skipped


def pixel_permutation(seed: int) -> Tensor:
    """The one fixed pixel order of permuted MNIST for ``seed``: (784,) long."""
    return torch.randperm(PIXELS, generator=torch.Generator().manual_seed(seed))


class PixelMNIST(Dataset):
    """Images as sequences: item -> ``{"x": (784, 1) float in [0, 1], "y": () long}``.

    ``permutation`` (784,) reorders the pixels of every image the same way (permuted MNIST).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, permutation: Tensor | None = None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = torch.tensor(images.reshape(len(images), PIXELS), dtype=torch.uint8)
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.permutation = permutation

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        x = self.images[index].float().div_(255.0)
        if self.permutation is not None:
            x = x[self.permutation]
        return {"x": x.unsqueeze(-1), "y": self.labels[index]}


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``split`` "train" (train-*-ubyte.gz if present, else mnist_5k.csv.gz) or "test" -> (images, labels)."""
    prefix = "t10k" if split == "test" else "train"
    images = root / f"{prefix}-images-idx3-ubyte.gz"
    if split == "train" and not images.is_file():
        csv = root / "mnist_5k.csv.gz"
        if csv.is_file():
            x, y, skipped = read_csv(csv)
            if skipped:
                print(f"{csv}: skipped {skipped} malformed line(s)")
            return x, y
    x = read_idx(images)
    y = read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    if len(x) != len(y):
        raise UserError(f"{root}: {len(x)} {prefix} images but {len(y)} labels")
    return x, y


class SeqMNIST(LightningDataModule):
    """Sequential (``permuted=False``) or permuted pixel MNIST.

    Args:
        root: folder with the MNIST files (e.g. ../shared/data/mnist). Required: never guessed.
        permuted: apply one fixed pixel permutation drawn from ``permutation_seed``.
        val_size: images held out of the training set for model selection (drawn by ``seed``).
        train_limit: use only the first n training images (0: all) - for smoke tests.
    """

    def __init__(
        self,
        root: str,
        permuted: bool = False,
        permutation_seed: int = 0,
        batch_size: int = 50,
        val_size: int = 500,
        train_limit: int = 0,
        test_limit: int = 0,
        seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.root = Path(root)

    def setup(self, stage: str | None = None) -> None:
        # checked here, not in __init__: the config parser would bury the message in a union-type error
        if not self.root.is_dir():
            raise UserError(f"MNIST folder not found: {self.root}; set data.root to the folder with the MNIST files")
        h = self.hparams
        perm = pixel_permutation(h.permutation_seed) if h.permuted else None
        if stage in (None, "fit", "validate") and not hasattr(self, "train_set"):
            x, y = load_split(self.root, "train")
            if h.train_limit:
                x, y = x[: h.train_limit], y[: h.train_limit]
            if not 0 <= h.val_size < len(y):
                raise UserError(f"data.val_size={h.val_size} leaves no training images out of {len(y)}")
            order = torch.randperm(len(y), generator=torch.Generator().manual_seed(h.seed)).numpy()
            dev, train = order[: h.val_size], order[h.val_size :]
            self.train_set = PixelMNIST(x[train], y[train], perm)
            self.val_set = PixelMNIST(x[dev], y[dev], perm)
        if stage in (None, "test") and not hasattr(self, "test_set"):
            x, y = load_split(self.root, "test")
            if h.test_limit:
                x, y = x[: h.test_limit], y[: h.test_limit]
            self.test_set = PixelMNIST(x, y, perm)

    def train_dataloader(self) -> DataLoader:
        h = self.hparams
        return ResumableLoader(self.train_set, h.batch_size, shuffle=True, seed=h.seed, num_workers=h.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.hparams.batch_size, num_workers=self.hparams.num_workers)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, self.hparams.batch_size, num_workers=self.hparams.num_workers)
