"""MaskedBatchNorm: statistics over valid steps only, and batch renormalisation (Ioffe 2017);
StepLayerNorm: layer norm per step (Ba, Kiros & Hinton 2016), with no statistics across steps or sequences."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from toolkit import nn as rnn
from toolkit.nn.norm import BATCH_NORM_MODES, NORM_MODES, MaskedBatchNorm, StepLayerNorm, build_norm
from toolkit.train.optim import NORM_TYPES, no_decay_parameters


def batch(seed=0, shift=3.0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 7, 5, generator=g, dtype=torch.float64) * scale + shift
    return x, torch.tensor([7, 5, 2, 6])


def valid(x, lengths):
    return torch.cat([x[b, : int(n)] for b, n in enumerate(lengths)])


@pytest.mark.parametrize("mode", BATCH_NORM_MODES)
def test_padded_steps_change_nothing(mode):
    x, lengths = batch()
    noisy = x.clone()
    for b, n in enumerate(lengths):
        noisy[b, int(n) :] = 1e3
    a, b = MaskedBatchNorm(5, mode).double(), MaskedBatchNorm(5, mode).double()
    torch.testing.assert_close(valid(a(x, lengths), lengths), valid(b(noisy, lengths), lengths))
    torch.testing.assert_close(a.running_mean, b.running_mean)
    torch.testing.assert_close(a.running_var, b.running_var)


def test_seq_statistics_are_those_of_the_valid_steps():
    x, lengths = batch()
    norm = MaskedBatchNorm(5, "seq", momentum=1.0).double()
    v = valid(x, lengths)
    expect = (v - v.mean(0)) / torch.sqrt(v.var(0, unbiased=False) + norm.eps)
    torch.testing.assert_close(valid(norm(x, lengths), lengths), expect)
    torch.testing.assert_close(norm.running_var, v.var(0, unbiased=True))


def test_renorm_is_batch_norm_until_its_clips_open():
    x, lengths = batch()
    seq, renorm = MaskedBatchNorm(5, "seq").double(), MaskedBatchNorm(5, "renorm").double()
    for norm in (seq, renorm):  # running statistics far from this batch's: r, d would matter
        norm.running_mean.fill_(-1.0)
        norm.running_var.fill_(9.0)
    xs, xr = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ys, yr = seq(xs, lengths), renorm(xr, lengths)
    torch.testing.assert_close(yr, ys)
    (ys * torch.arange(5.0, dtype=ys.dtype)).sum().backward()
    (yr * torch.arange(5.0, dtype=yr.dtype)).sum().backward()
    torch.testing.assert_close(xr.grad, xs.grad)
    assert int(renorm.num_updates) == 1


def renorm_by_hand(norm, x, lengths, r_max, d_max):
    """Ioffe 2017, Algorithm 1, over the valid steps; r and d carry no gradient."""
    v = valid(x, lengths)
    mu_b, var_b = v.mean(0), v.var(0, unbiased=False)
    sigma_b = torch.sqrt(var_b + norm.eps)
    sigma = torch.sqrt(norm.running_var + norm.eps)
    r = (sigma_b / sigma).clamp(1 / r_max, r_max).detach()
    d = ((mu_b - norm.running_mean) / sigma).clamp(-d_max, d_max).detach()
    return ((x - mu_b) / sigma_b * r + d) * norm.weight + norm.bias


@pytest.mark.parametrize(("running_var", "clipped"), [(4.0, False), (400.0, True)])
def test_renorm_once_open_follows_the_equation(running_var, clipped):
    x, lengths = batch(shift=3.0, scale=2.0)
    norm = MaskedBatchNorm(5, "renorm", momentum=0.0).double()
    norm.num_updates.fill_(norm.RENORM_RAMP[1])  # clips fully open: r in [1/3, 3], d in [-5, 5]
    norm.running_mean.fill_(2.5)
    norm.running_var.fill_(running_var)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 1.5, 5))
        norm.bias.copy_(torch.linspace(-1.0, 1.0, 5))
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y = norm(xa, lengths)
    expect = renorm_by_hand(norm, xb, lengths, *norm.RENORM_LIMITS)
    torch.testing.assert_close(valid(y, lengths), valid(expect, lengths))
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=y.dtype)
    (valid(y * w, lengths)).sum().backward()
    (valid(expect * w, lengths)).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    # within the clips, training normalises exactly as evaluation does (the running statistics)
    evaluated = norm.eval()(x, lengths)
    assert torch.allclose(valid(y, lengths), valid(evaluated, lengths)) != clipped


def test_renorm_clips_open_linearly():
    norm = MaskedBatchNorm(5, "renorm").double()
    norm.running_var.fill_(1e4)  # r wants to be ~0.02: the clip decides
    x, lengths = batch()
    start, end = norm.RENORM_RAMP
    seen = []
    for step in (0, start, (start + end) // 2, end, end + 500):
        norm.num_updates.fill_(step)
        norm.running_mean.zero_()
        norm.running_var.fill_(1e4)
        r, _ = norm._renorm(valid(x, lengths).mean(0), valid(x, lengths).var(0, unbiased=False))
        seen.append(float(r.max()))
    r_max = norm.RENORM_LIMITS[0]
    assert seen == pytest.approx([1.0, 1.0, 1 / (1 + (r_max - 1) / 2), 1 / r_max, 1 / r_max])


def test_renorm_state_round_trips():
    a = MaskedBatchNorm(5, "renorm")
    a.num_updates.fill_(321)
    b = MaskedBatchNorm(5, "renorm")
    b.load_state_dict(a.state_dict())
    assert int(b.num_updates) == 321
    with pytest.raises(ValueError, match="renorm"):
        MaskedBatchNorm(5, "bogus")


def test_layer_norm_is_torch_layer_norm_per_step():
    x, lengths = batch()
    norm = StepLayerNorm(5).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
    ref = nn.LayerNorm(5).double()
    ref.load_state_dict(norm.state_dict())
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    expect = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    for mode in ("train", "eval"):  # one function: no running statistics
        getattr(norm, mode)()
        torch.testing.assert_close(norm(x, lengths), expect)
        torch.testing.assert_close(norm(x), ref(x))
    assert not list(norm.buffers())


def test_layer_norm_sees_one_step_of_one_sequence():
    """Padding, the rest of the batch and the other steps change nothing at a valid step."""
    x, lengths = batch()
    norm = StepLayerNorm(5).double()
    noisy = x.clone()
    for b, n in enumerate(lengths):
        noisy[b, int(n) :] = 1e3
    torch.testing.assert_close(valid(norm(noisy, lengths), lengths), valid(norm(x, lengths), lengths))
    torch.testing.assert_close(norm(x[2:3, :2]), norm(x)[2:3, :2])


def test_build_norm_and_the_no_decay_rule():
    assert isinstance(build_norm(5, "layer"), StepLayerNorm)
    for mode in BATCH_NORM_MODES:
        assert build_norm(5, mode).mode == mode
    assert NORM_MODES == (*BATCH_NORM_MODES, "layer")
    with pytest.raises(ValueError, match="layer"):
        build_norm(5, "bogus")
    with pytest.raises(ValueError, match="unknown batch-norm mode"):
        MaskedBatchNorm(5, "layer")  # layer norm is its own class
    # exempt as a torch norm layer (NORM_TYPES), not only for being 1-d; in a layer, every gain and
    # bias of its layer norms is exempt and no input projection is
    assert isinstance(StepLayerNorm(5), NORM_TYPES)
    for name in ("indrnn", "res_indrnn", "dense_indrnn"):
        layer = rnn.build(name, 3, 8, 3, norm="layer")
        exempt = {id(p) for p in no_decay_parameters(layer)}
        norms = [m for m in layer.modules() if isinstance(m, StepLayerNorm)]
        assert norms and all(id(p) in exempt for m in norms for p in m.parameters())
        weights = [p for n, p in layer.named_parameters() if n.endswith("input.weight")]
        assert weights and not any(id(p) in exempt for p in weights)
