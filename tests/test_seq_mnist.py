"""Pixel MNIST readers and datamodule on tiny fake files written in the real formats."""

import gzip
import struct

import numpy as np
import pytest
import torch

from toolkit.errors import UserError
from toolkit.seqdata.mnist import PIXELS, PixelMNIST, SeqMNIST, pixel_permutation, read_csv, read_idx


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.uint8)


def write_csv(path, images, labels, extra_lines=()):
    lines = [",".join(map(str, img.reshape(-1).tolist() + [int(lab)])) for img, lab in zip(images, labels, strict=True)]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(list(lines) + list(extra_lines)) + "\n")


@pytest.fixture
def mnist_dir(tmp_path):
    train_x, train_y = fake_images(40, 0)
    test_x, test_y = fake_images(12, 1)
    write_csv(tmp_path / "mnist_5k.csv.gz", train_x, train_y, extra_lines=["1,2,3", "x" * 10])
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", test_y)
    return tmp_path, (train_x, train_y), (test_x, test_y)


def test_idx_round_trip(mnist_dir):
    root, _, (test_x, test_y) = mnist_dir
    assert np.array_equal(read_idx(root / "t10k-images-idx3-ubyte.gz"), test_x)
    assert np.array_equal(read_idx(root / "t10k-labels-idx1-ubyte.gz"), test_y)


def test_csv_reads_pixels_then_label_and_skips_bad_lines(mnist_dir):
    root, (train_x, train_y), _ = mnist_dir
    images, labels, skipped = read_csv(root / "mnist_5k.csv.gz")
    assert skipped == 2
    assert np.array_equal(images, train_x.reshape(40, PIXELS)) and np.array_equal(labels, train_y)


def test_sequence_items_scan_pixels_in_row_major_order():
    img = np.arange(PIXELS, dtype=np.int64).reshape(1, 28, 28) % 256
    item = PixelMNIST(img.astype(np.uint8), np.array([7]))[0]
    assert item["x"].shape == (PIXELS, 1) and int(item["y"]) == 7
    assert torch.allclose(item["x"][:, 0], torch.arange(PIXELS).remainder(256).float() / 255)


def test_permutation_is_fixed_by_seed_and_applied_to_every_image():
    perm = pixel_permutation(0)
    assert torch.equal(perm, pixel_permutation(0)) and not torch.equal(perm, pixel_permutation(1))
    assert torch.equal(perm.sort().values, torch.arange(PIXELS))
    images, labels = fake_images(3, 2)
    plain, permuted = PixelMNIST(images, labels), PixelMNIST(images, labels, perm)
    for i in range(3):
        assert torch.equal(permuted[i]["x"], plain[i]["x"][perm])


def test_datamodule_splits_and_batches(mnist_dir):
    root, _, _ = mnist_dir
    dm = SeqMNIST(str(root), permuted=True, batch_size=8, val_size=10)
    dm.setup("fit")
    dm.setup("test")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 12)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (8, PIXELS, 1) and batch["y"].dtype == torch.long


def test_missing_files_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="MNIST folder not found"):
        SeqMNIST(str(tmp_path / "nowhere")).setup("fit")
    dm = SeqMNIST(str(tmp_path))
    with pytest.raises(UserError, match="MNIST file missing: .*train-images-idx3-ubyte.gz"):
        dm.setup("fit")
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"not an idx file")
    with pytest.raises(UserError, match="bad magic number"):
        read_idx(bad)
