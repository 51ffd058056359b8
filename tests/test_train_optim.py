"""build_optimizer: which parameters weight decay reaches, and the step-wise schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from toolkit import nn as rnn
from toolkit.data.tokenizer import train_tokenizer
from toolkit.train.optim import build_optimizer, no_decay_parameters


def decay_by_name(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Parameter name -> the weight decay its group applies; every parameter in exactly one group."""
    names = {id(p): n for n, p in model.named_parameters()}
    seen: dict[str, float] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = names[id(p)]
            assert name not in seen, f"{name} is in two groups"
            seen[name] = group["weight_decay"]
    assert set(seen) == set(names.values()), "some parameters are in no group"
    return seen


class Small(nn.Module):
    """A res_indrnn, a LayerNorm, a leaky layer with learned leaks, a tied embedding/output pair and
    a module that exempts a matrix by declaration."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.rnn = rnn.build("res_indrnn", 4, 4, 3, norm="seq")
        self.ln = nn.LayerNorm(4)
        self.leaky = rnn.build("leaky", 4, 4, learn_alpha=True)
        self.out = nn.Linear(4, 7)
        self.out.weight = self.embed.weight  # tied: one parameter, one group
        self.mixer = nn.Linear(4, 4, bias=False)
        self.mixer.weight_decay_exempt = ("weight",)


def test_no_decay_on_recurrent_weights_biases_and_norms():
    model = Small()
    optimizer = build_optimizer(model, "adamw", lr=1e-3, weight_decay=0.01)["optimizer"]
    decay = decay_by_name(model, optimizer)
    exempt = {n for n, wd in decay.items() if wd == 0.0}
    assert {wd for wd in decay.values()} == {0.0, 0.01}
    assert exempt == {
        # every IndRNN layer's u: the first layer's and each residual unit's
        "rnn.first.layers.0.0.u", "rnn.blocks.0.0.rnn.layers.0.0.u", "rnn.blocks.0.1.rnn.layers.0.0.u",
        # biases
        "rnn.first.layers.0.0.input.bias", "rnn.blocks.0.0.rnn.layers.0.0.input.bias",
        "rnn.blocks.0.1.rnn.layers.0.0.input.bias", "leaky.layers.0.0.input.bias", "out.bias",
        # normalisation: MaskedBatchNorm (pre-activation and final) and LayerNorm
        "rnn.blocks.0.0.norm.weight", "rnn.blocks.0.0.norm.bias", "rnn.blocks.0.1.norm.weight",
        "rnn.blocks.0.1.norm.bias", "rnn.final_norm.weight", "rnn.final_norm.bias", "ln.weight", "ln.bias",
        # the leaky units' learned leak, and the declared matrix
        "leaky.layers.0.0.alpha_logit", "mixer.weight",
    }  # fmt: skip
    assert set(decay) - exempt == {
        "embed.weight", "rnn.first.layers.0.0.input.weight", "rnn.blocks.0.0.rnn.layers.0.0.input.weight",
        "rnn.blocks.0.1.rnn.layers.0.0.input.weight", "leaky.layers.0.0.input.weight",
        "leaky.layers.0.0.recurrent.weight",
    }  # fmt: skip


def test_the_rule_does_not_rest_on_shape_alone():
    # a 2-d LayerNorm weight is exempt by its module's type (Small's mixer: by declaration);
    # a declaration that names no parameter is an error, not a silent no-op
    model = nn.Sequential(nn.LayerNorm((3, 4)), nn.Linear(4, 4))
    assert [p.shape for p in no_decay_parameters(model)] == [(3, 4), (3, 4), (4,)]
    bad = nn.Linear(2, 2)
    bad.weight_decay_exempt = ("wieght",)
    with pytest.raises(ValueError, match="wieght"):
        no_decay_parameters(bad)


@pytest.fixture
def char_tokenizer(tmp_path):
    train_tokenizer("char", ["hello world", "abc def"]).save(tmp_path / "tok")
    return str(tmp_path / "tok")


def check_task_groups(task, weight_decay):
    optimizer = task.configure_optimizers()["optimizer"]
    decay = decay_by_name(task, optimizer)
    for name, wd in decay.items():
        leaf = name.rsplit(".", 1)[-1]
        exempt = leaf in ("u", "bias") or "norm." in name or name.endswith("parametrizations.u.original")
        assert wd == (0.0 if exempt else weight_decay), name
    assert any(wd == 0.0 for wd in decay.values()) and any(wd == weight_decay for wd in decay.values())


def test_ctc_task_groups(char_tokenizer):
    from toolkit.tasks.asr import CTCTask

    task = CTCTask(char_tokenizer, feat_dim=8, encoder="res_indrnn", hidden_size=8, num_layers=3,
                   subsampling="conv", subsampling_factor=4, weight_decay=0.02)  # fmt: skip
    check_task_groups(task, 0.02)


def test_lm_task_groups_with_tied_weights_and_weight_dropout(char_tokenizer):
    from toolkit.tasks.lm import LMTask

    task = LMTask(char_tokenizer, encoder="res_indrnn", hidden_size=8, num_layers=3, encoder_opts={"norm": "frame"},
                  weight_dropout=0.2, optimizer="adamw", weight_decay=0.1)  # fmt: skip
    assert any(n.endswith("parametrizations.u.original") for n, _ in task.named_parameters())
    check_task_groups(task, 0.1)


def test_seq_task_groups():
    from toolkit.tasks.seq import SeqTask

    task = SeqTask(3, 2, encoder="indrnn", hidden_size=8, encoder_opts={"norm": "seq"}, weight_decay=0.05)
    check_task_groups(task, 0.05)


def test_parameters_given_as_a_list_keep_one_group():
    w = nn.Parameter(torch.zeros(3))
    optimizer = build_optimizer([w], "adamw", weight_decay=0.01)["optimizer"]
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["weight_decay"] == 0.01


def rates(conf: dict, steps: int) -> list[float]:
    """The rate each of ``steps`` optimiser steps runs at, stepping the schedule as Lightning does
    with ``interval: "step"`` (once after every optimiser step)."""
    optimizer, scheduler = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_warmup_and_milestones_compose():
    w = nn.Parameter(torch.zeros(2))
    got = rates(build_optimizer([w], "sgd", lr=2.0, lr_milestones=[8, 5], lr_gamma=0.5, warmup_steps=4), 12)
    # lr(k) = lr * min(1, (k + 1) / warmup) * gamma ** #{milestones <= k}
    expected = [2.0 * min(1.0, (k + 1) / 4) * 0.5 ** sum(m <= k for m in (5, 8)) for k in range(12)]
    assert got == pytest.approx(expected)
    assert got[0] == pytest.approx(0.5) and got[3] == got[4] == pytest.approx(2.0)  # warmed up
    assert got[5] == pytest.approx(1.0) and got[8] == got[11] == pytest.approx(0.5)  # decayed twice
    # a milestone inside the warmup scales the rest of the warmup too
    got = rates(build_optimizer([w], "sgd", lr=1.0, lr_milestones=[2], lr_gamma=0.1, warmup_steps=5), 7)
    assert got == pytest.approx([0.2, 0.4, 0.06, 0.08, 0.1, 0.1, 0.1])


@pytest.mark.parametrize("warmup, milestones", [(3, None), (0, [2, 4]), (0, None)])
def test_warmup_or_milestones_alone_unchanged(warmup, milestones):
    w = nn.Parameter(torch.zeros(2))
    conf = build_optimizer([w], "sgd", lr=1.0, lr_milestones=milestones, lr_gamma=0.1, warmup_steps=warmup)
    if not warmup and not milestones:
        assert "lr_scheduler" not in conf
        return
    expected = [min(1.0, (k + 1) / warmup) if warmup else 0.1 ** sum(m <= k for m in milestones) for k in range(6)]
    assert rates(conf, 6) == pytest.approx(expected)
    if milestones:  # milestones alone stay a MultiStepLR: checkpoints written with it still resume
        assert isinstance(conf["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.MultiStepLR)
