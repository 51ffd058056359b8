"""The adding-problem generator: markers, targets, determinism, and the 1/6 baseline."""

import pytest
import torch

from toolkit.seqdata.adding import BASELINE_MSE, AddingData, AddingDataset, adding_example


@pytest.mark.parametrize("seq_len", [2, 3, 10, 101])
def test_exactly_two_markers_one_per_half_and_target_is_their_sum(seq_len):
    ds = AddingDataset(seq_len, size=300, seed=5)
    half = seq_len // 2
    for i in range(len(ds)):
        item = ds[i]
        x, y = item["x"], item["y"]
        assert x.shape == (seq_len, 2) and x.dtype == torch.float32
        marks = torch.nonzero(x[:, 1]).flatten().tolist()
        assert len(marks) == 2 and x[:, 1].sum() == 2.0
        first, second = marks
        assert 0 <= first < half <= second < seq_len
        assert float(y) == pytest.approx(float(x[first, 0] + x[second, 0]), abs=1e-6)
        assert 0.0 <= float(x[:, 0].min()) and float(x[:, 0].max()) < 1.0


def test_items_are_deterministic_by_seed_and_index():
    a, b, c = AddingDataset(50, 10, seed=1), AddingDataset(50, 10, seed=1), AddingDataset(50, 10, seed=2)
    assert torch.equal(a[3]["x"], b[3]["x"])
    assert not torch.equal(a[3]["x"], a[4]["x"])
    assert not torch.equal(a[3]["x"], c[3]["x"])


def test_marker_positions_cover_both_halves_uniformly():
    ds = AddingDataset(20, size=4000, seed=0)
    firsts = torch.tensor([int(torch.nonzero(ds[i]["x"][:, 1])[0]) for i in range(len(ds))])
    counts = torch.bincount(firsts, minlength=10)[:10].float()
    # 400 expected per position; a binomial sd is about 19
    assert counts.min() > 300 and counts.max() < 500


def test_predicting_the_mean_gives_the_one_sixth_baseline():
    ds = AddingDataset(30, size=4000, seed=3)
    y = torch.stack([ds[i]["y"] for i in range(len(ds))])
    mse = float(((y - 1.0) ** 2).mean())
    # Var(U1 + U2) = 1/6; the standard error of this estimate is about 0.003
    assert mse == pytest.approx(BASELINE_MSE, abs=0.015)
    assert float(y.mean()) == pytest.approx(1.0, abs=0.03)


def test_datamodule_splits_use_different_sequences():
    dm = AddingData(seq_len=16, batch_size=4, train_size=40, val_size=8, test_size=8)
    train, val, test = dm.train_set[0]["x"], dm.val_set[0]["x"], dm.test_set[0]["x"]
    assert not torch.equal(train, val) and not torch.equal(val, test)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (4, 16, 2) and batch["y"].shape == (4,)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError):
        adding_example(1, torch.Generator())
    with pytest.raises(ValueError):
        AddingDataset(10, 0)
