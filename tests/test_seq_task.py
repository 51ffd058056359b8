"""SeqTask: builds its encoder by name, learns, respects lengths, and sizes itself to a budget."""

from pathlib import Path

import pytest
import torch
import yaml

import toolkit.nn as rnn
from toolkit.seqdata.adding import AddingDataset
from toolkit.tasks.seq import SeqTask

# the step logs through Lightning, which warns when no Trainer is attached; these tests drive it by hand
pytestmark = pytest.mark.filterwarnings("ignore:You are trying to .self.log")

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def adding_batch(n, seq_len, seed=0):
    ds = AddingDataset(seq_len, n, seed=seed)
    items = [ds[i] for i in range(n)]
    return {"x": torch.stack([i["x"] for i in items]), "y": torch.stack([i["y"] for i in items])}


@pytest.mark.parametrize("encoder", ["indrnn", "lstm"])
def test_a_few_adam_steps_reduce_the_regression_loss(encoder):
    torch.manual_seed(0)
    task = SeqTask(input_size=2, num_outputs=1, loss="mse", encoder=encoder, hidden_size=16, num_layers=2, lr=1e-2)
    batch = adding_batch(32, 12)
    opt = task.configure_optimizers()["optimizer"]
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = task.step(batch, "train")
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_classification_step_learns_and_scores():
    torch.manual_seed(0)
    task = SeqTask(input_size=1, num_outputs=3, loss="ce", encoder="indrnn", hidden_size=16, num_layers=1, lr=1e-2)
    x = torch.rand(24, 8, 1)
    y = (x[:, -1, 0] * 3).long().clamp(max=2)  # the class is decided by the last step
    opt = task.configure_optimizers()["optimizer"]
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = task.step({"x": x, "y": y}, "train")
        loss.backward()
        opt.step()
        first = first if first is not None else float(loss.detach())
    assert float(loss.detach()) < 0.5 * first
    acc = (task(x).argmax(-1) == y).float().mean()
    assert acc > 0.8
    assert task.monitor == "val/err" and task.monitor_mode == "min"


@pytest.mark.parametrize("readout", ["last", "mean"])
def test_padding_does_not_change_the_output(readout):
    torch.manual_seed(0)
    task = SeqTask(input_size=2, num_outputs=1, loss="mse", encoder="indrnn", hidden_size=8, readout=readout).eval()
    short = torch.rand(1, 5, 2)
    padded = torch.cat([short, torch.rand(1, 4, 2)], dim=1)
    with torch.no_grad():
        a = task(short)
        b = task(padded, torch.tensor([5]))
        c = task(padded)
    assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(a, c)


def test_param_budget_picks_the_equal_size_width():
    budget = rnn.num_params("lstm", 2, 32, 2)
    task = SeqTask(input_size=2, num_outputs=1, loss="mse", encoder="indrnn", num_layers=2, param_budget=budget)
    assert task.hidden_size == rnn.width_for_params("indrnn", budget, 2, 2)
    assert abs(sum(p.numel() for p in task.encoder.parameters()) - budget) <= 0.02 * budget


def test_unknown_encoder_or_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown encoder"):
        SeqTask(input_size=2, num_outputs=1, encoder="nope")
    with pytest.raises(ValueError, match="loss"):
        SeqTask(input_size=2, num_outputs=1, loss="l1")


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*/T*_*.yaml")) + sorted(RECIPES.glob("seq_mnist/*mnist_*.yaml")),
                         ids=lambda p: p.name)
def test_every_recipe_config_builds_its_model(path):
    config = yaml.safe_load(path.read_text())
    assert config["model"]["class_path"] == "toolkit.tasks.seq.SeqTask"
    assert config["exp_dir"].startswith("exp/")
    with torch.device("meta"):
        task = SeqTask(**config["model"]["init_args"])
    assert task.hparams.encoder == path.stem.split("_", 1)[1]
