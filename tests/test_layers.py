"""The layer contract, checked for every layer in toolkit.nn."""

from __future__ import annotations

import pytest
import torch
from layer_reference import dense_indrnn, indrnn_cell, indrnn_stack, res_indrnn, single_layer_reference

from toolkit import nn as rnn
from toolkit.nn.base import reverse_padded
from toolkit.nn.indrnn import IndRNNCell
from toolkit.nn.norm import StepLayerNorm

ALL = rnn.available()
CELL_LAYERS = ["indrnn", "irnn", "rnn_tanh", "lstm", "gru", "minimalrnn", "cfn", "leaky", "delay", "clockwork"]
# options that exercise more than the defaults
VARIANTS = [
    ("indrnn", {"activation": "tanh"}),
    ("indrnn", {"norm": "frame"}),
    ("indrnn", {"norm": "seq"}),
    ("res_indrnn", {"norm": "frame"}),
    ("res_indrnn", {"norm": "renorm"}),
    ("indrnn", {"norm": "layer"}),
    ("res_indrnn", {"norm": "layer"}),
    ("dense_indrnn", {"norm": "layer"}),
    ("leaky", {"learn_alpha": True}),
    ("delay", {"delay": 3}),
    ("clockwork", {"num_modules": 3}),
]
CASES = [(n, {}) for n in ALL] + VARIANTS
IDS = [n + ("-" + "-".join(f"{k}={v}" for k, v in o.items()) if o else "") for n, o in CASES]


def make(name, input_size=3, hidden_size=4, num_layers=2, **opts):
    torch.manual_seed(0)
    return rnn.build(name, input_size, hidden_size, num_layers, **opts)


SEQ_NORMS = ("seq", "renorm")  # statistics over every step of the sequence


def has_seq_norm(name, opts):
    default = "seq" if name in ("res_indrnn", "dense_indrnn") else None
    return opts.get("norm", default) in SEQ_NORMS


def randomise_norm_stats(layer):
    """Give every batch norm non-trivial running statistics, so evaluation mode is a real test, and
    every layer norm a gain and bias other than 1 and 0."""
    g = torch.Generator().manual_seed(1)
    for m in layer.modules():
        if hasattr(m, "running_mean"):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
        elif isinstance(m, StepLayerNorm):
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.3)


@pytest.mark.parametrize("name", CELL_LAYERS)
def test_single_layer_matches_equation(name):
    torch.manual_seed(1)
    layer = make(name, num_layers=1).double().eval()
    x = torch.randn(3, 9, 3, dtype=torch.float64)
    y, _ = layer(x)
    torch.testing.assert_close(y, single_layer_reference(name, layer, x))


@pytest.mark.parametrize(
    "opts", [{"activation": "tanh"}, {"norm": "frame"}, {"norm": "seq"}, {"norm": "renorm"}, {"norm": "layer"}]
)
def test_indrnn_variants_match_equation(opts):
    layer = make("indrnn", num_layers=1, **opts).double().eval()
    randomise_norm_stats(layer)
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0], indrnn_cell(layer.layers[0][0], x))


def test_stacked_layers_feed_each_other():
    layer = make("indrnn", num_layers=3).double().eval()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h = x
    for (cell,) in layer.layers:
        h = indrnn_cell(cell, h)
    torch.testing.assert_close(layer(x)[0], h)


def test_res_indrnn_is_residual_preactivation_stack():
    layer = make("res_indrnn", num_layers=5).double().eval()
    randomise_norm_stats(layer)
    x = torch.randn(2, 6, 3, dtype=torch.float64)

    def bn(norm, v):
        return (v - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias

    h = indrnn_cell(layer.first.layers[0][0], x)
    assert len(layer.blocks) == 2 and all(len(b) == 2 for b in layer.blocks)
    for block in layer.blocks:
        branch = h
        for unit in block:
            branch = indrnn_cell(unit.rnn.layers[0][0], bn(unit.norm, branch))
        h = h + branch
    torch.testing.assert_close(layer(x)[0], bn(layer.final_norm, h))


def test_dense_indrnn_concatenates_and_compresses():
    layer = make("dense_indrnn", hidden_size=8, num_layers=4, growth_rate=2, num_blocks=2).eval()
    x = torch.randn(2, 5, 3)
    y, _ = layer(x)
    assert y.shape == (2, 5, 8)
    # block 1: 8 + 2 layers x growth 2 = 12 features, compressed by half into the transition
    assert layer.transitions[0].rnn.input_size == 12 and layer.transitions[0].rnn.hidden_size == 6
    assert layer.blocks[1][0].units[0].rnn.input_size == 6
    assert layer.blocks[0][0].units[0].rnn.hidden_size == 8  # bottleneck 4 x growth


REFERENCES = {"indrnn": indrnn_stack, "res_indrnn": res_indrnn, "dense_indrnn": dense_indrnn}
IND_SIZES = {
    "indrnn": {},
    "res_indrnn": {"num_layers": 5},
    "dense_indrnn": {"hidden_size": 8, "growth_rate": 2, "num_blocks": 2},
}


@pytest.mark.parametrize("norm", ["layer", "seq", "frame"])
@pytest.mark.parametrize("name", list(REFERENCES))
def test_indrnn_family_matches_equation(name, norm):
    """Each IndRNN layer against its step-by-step reference; layer norm also in training mode (it has
    no batch statistics: one function in both modes), batch norm in evaluation mode."""
    layer = make(name, **({"num_layers": 3} | IND_SIZES[name]), norm=norm).double()
    randomise_norm_stats(layer)
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    for mode in ("train", "eval") if norm == "layer" else ("eval",):
        getattr(layer, mode)()
        torch.testing.assert_close(layer(x)[0], REFERENCES[name](layer, x), msg=f"{mode} mode")


@pytest.mark.parametrize("name", list(REFERENCES))
def test_layer_norm_needs_no_batch_statistics(name):
    """norm: layer in training mode: no running averages; each sequence's outputs are those it has
    alone, unpadded (a batch of short utterances cannot shift them), equal the evaluation-mode
    outputs, and chunks with the carried state equal one pass (float64, default tolerances)."""
    layer = make(name, **IND_SIZES[name], norm="layer").double().train()
    randomise_norm_stats(layer)
    assert not [n for n, _ in layer.named_buffers() if "running" in n]
    x = torch.randn(3, 9, 3, dtype=torch.float64)
    lengths = torch.tensor([9, 3, 2])
    y, _ = layer(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(layer(x[b : b + 1, :n])[0][0], y[b, :n])
    torch.testing.assert_close(layer.eval()(x, lengths)[0], y)
    layer.train()
    lengths = torch.tensor([9, 7, 5])
    whole, final = layer(x, lengths)
    first, state = layer(x[:, :4], torch.tensor([4, 4, 4]))
    second, state2 = layer(x[:, 4:], lengths - 4, state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)
    for a, b in zip(_leaves(state2), _leaves(final), strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("name", list(REFERENCES))
def test_layer_norm_gradcheck_every_parameter(name, bidirectional):
    """gradcheck (float64, tiny layer, padded batch) through x and every parameter: W, u, the layer
    norms' gain and bias."""
    sizes = {"dense_indrnn": {"hidden_size": 3, "growth_rate": 1, "num_blocks": 1}}.get(name, {"hidden_size": 3})
    layer = make(name, input_size=2, num_layers=2, bidirectional=bidirectional, norm="layer", **sizes).double()
    randomise_norm_stats(layer)
    names = [n for n, _ in layer.named_parameters()]
    values = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
    assert any(n.endswith("norm.weight") for n in names) and any(n.endswith(".u") for n in names)
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 3])

    def f(x, *params):
        return torch.func.functional_call(layer, dict(zip(names, params, strict=True)), (x, lengths))[0]

    assert torch.autograd.gradcheck(f, (x, *values), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(("name", "opts"), CASES, ids=IDS)
def test_gradcheck(name, opts):
    layer = make(name, input_size=2, hidden_size=3, num_layers=2, **opts).double()
    randomise_norm_stats(layer)
    layer.eval() if name not in ("res_indrnn", "dense_indrnn") else layer.train()
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 3])
    params = dict(layer.named_parameters())
    weight_name = next(k for k in params if "weight" in k)
    w = params[weight_name].detach().clone().requires_grad_(True)

    def f(x, w):
        out, _ = torch.func.functional_call(layer, {**params, weight_name: w}, (x, lengths))
        return out

    assert torch.autograd.gradcheck(f, (x, w), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(("name", "opts"), CASES, ids=IDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_invariance(name, opts, bidirectional):
    layer = make(name, bidirectional=bidirectional, **opts)
    x = torch.randn(3, 7, 3)
    lengths = torch.tensor([7, 4, 2])
    y, _ = layer(x, lengths)
    assert y.shape == (3, 7, layer.output_size)
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(y[b, n:] == 0), "padded steps must be zero"
    # more padding, and garbage in the padding, must not change valid outputs
    x_more = torch.cat([x, torch.randn(3, 5, 3) * 100], dim=1)
    for b, n in enumerate(lengths.tolist()):
        x_more[b, n:7] = torch.randn(7 - n, 3) * 100
    torch.manual_seed(0)
    y_more, _ = layer(x_more, lengths)
    torch.testing.assert_close(y_more[:, :7], y, atol=1e-5, rtol=1e-5)
    # each sequence alone, unpadded, gives the same valid outputs (eval: batch norms use running stats)
    layer.eval()
    y_eval, state = layer(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = layer(x[b : b + 1, :n])
        torch.testing.assert_close(alone[0], y_eval[b, :n], atol=1e-5, rtol=1e-5)
        # the final state is taken at each sequence's own last step
        picked = rnn.select_state(state, torch.tensor([b]))
        for got, want in zip(_leaves(picked), _leaves(alone_state), strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("name", "opts"), CASES, ids=IDS)
def test_chunks_equal_one_pass(name, opts):
    layer = make(name, **opts)
    if has_seq_norm(name, opts):
        layer.eval()  # sequence-wide batch statistics look at the whole chunk; frame-wise ones do not
    x = torch.randn(3, 11, 3)
    lengths = torch.tensor([11, 8, 6])
    whole, final = layer(x, lengths)
    # chunk 1 holds 5 steps of every sequence, chunk 2 the rest
    first, state = layer(x[:, :5], torch.tensor([5, 5, 5]))
    second, state2 = layer(x[:, 5:], lengths - 5, state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-5, rtol=1e-5)
    flat = lambda s: [t for t in _leaves(s)]  # noqa: E731
    for a, b in zip(flat(state2), flat(final), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def _leaves(state):
    if isinstance(state, torch.Tensor):
        yield state
    else:
        for s in state:
            yield from _leaves(s)


def backward_direction_as_forward_layer(name, layer, **opts):
    """A unidirectional twin whose weights are ``layer``'s backward-direction weights."""
    twin = make(name, num_layers=1, **opts).eval()
    if hasattr(layer, "rnn"):
        state = {k.removesuffix("_reverse"): v for k, v in layer.rnn.state_dict().items() if k.endswith("_reverse")}
        twin.rnn.load_state_dict(state)
    else:
        twin.layers[0][0].load_state_dict(layer.layers[0][1].state_dict())
    return twin


BIDIRECTIONAL_CASES = [(n, {}) for n in CELL_LAYERS] + [("indrnn", {"norm": "layer"})]


@pytest.mark.parametrize(
    ("name", "opts"),
    BIDIRECTIONAL_CASES,
    ids=[n + "".join(f"-{k}={v}" for k, v in o.items()) for n, o in BIDIRECTIONAL_CASES],
)
def test_bidirectional_reverses_each_sequence_within_its_length(name, opts):
    layer = make(name, num_layers=1, bidirectional=True, **opts).eval()
    randomise_norm_stats(layer)
    forward_twin = make(name, num_layers=1, **opts).eval()
    if hasattr(layer, "rnn"):
        forward_twin.rnn.load_state_dict({k: v for k, v in layer.rnn.state_dict().items() if "_reverse" not in k})
    else:
        forward_twin.layers[0][0].load_state_dict(layer.layers[0][0].state_dict())
    backward_twin = backward_direction_as_forward_layer(name, layer, **opts)
    x = torch.randn(3, 6, 3)
    lengths = torch.tensor([6, 4, 2])
    y, _ = layer(x, lengths)
    H = layer.hidden_size
    for b, n in enumerate(lengths.tolist()):
        seq = x[b : b + 1, :n]
        torch.testing.assert_close(y[b, :n, :H], forward_twin(seq)[0][0], atol=1e-5, rtol=1e-5)
        # the backward half is the backward weights run over the sequence flipped within its length
        torch.testing.assert_close(y[b, :n, H:], backward_twin(seq.flip(1))[0][0].flip(0), atol=1e-5, rtol=1e-5)


def test_reverse_padded():
    x = torch.arange(8.0).view(2, 4, 1)
    out = reverse_padded(x, torch.tensor([4, 2]))
    assert out[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


@pytest.mark.parametrize("name", ALL)
def test_autocast_bf16_and_state_dict_round_trip(name):
    layer = make(name, bidirectional=True)
    x = torch.randn(2, 5, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = layer(x, torch.tensor([5, 3]))
    assert y.shape == (2, 5, layer.output_size) and torch.isfinite(y.float()).all()
    y.float().sum().backward()
    twin = rnn.build(name, 3, 4, 2, bidirectional=True)
    twin.load_state_dict(layer.state_dict())
    layer.eval(), twin.eval()
    torch.testing.assert_close(twin(x)[0], layer(x)[0])


def test_indrnn_bound_holds_after_optimiser_steps():
    bound = 2.0 ** (1 / 10)
    for opt_cls in (torch.optim.SGD, torch.optim.Adam):
        torch.manual_seed(0)
        layer = rnn.build("indrnn", 3, 8, 2, gamma=2.0, max_len=10)
        us = [cell.u for (cell,) in layer.layers]
        rest = [p for p in layer.parameters() if all(p is not u for u in us)]
        # a huge rate on u; the input weights at a sane one, or the outputs overflow to nan
        opt = opt_cls([{"params": us, "lr": 1e3}, {"params": rest, "lr": 1e-3}])
        for _ in range(3):
            opt.zero_grad()
            y, _ = layer(torch.randn(4, 10, 3) * 10)
            (-(y**2).sum()).backward()  # pushes u outwards as hard as it can
            opt.step()
            for (cell,) in layer.layers:
                assert cell.u.abs().max() <= bound + 1e-6
        assert any((cell.u.abs() - bound).abs().max() < 1e-6 for (cell,) in layer.layers), "bound never reached"


BOUND = 2.0 ** (1 / 10)


def stored_u(model):
    """Every IndRNN cell's stored u (behind DropConnect, the parametrisation's original)."""
    cells = [m for m in model.modules() if isinstance(m, IndRNNCell)]
    assert cells
    return [cell.parametrizations.u.original if hasattr(cell, "parametrizations") else cell.u for cell in cells]


def push_u_outwards(model, forward=None, steps=2):
    """Adam with a huge rate on every u (a step of about the rate, however small the gradient),
    on a loss that drives u outwards; the other weights stay put, so the outputs stay finite."""
    torch.manual_seed(0)
    forward = forward or model
    opt = torch.optim.Adam(stored_u(model), lr=1e3)
    for _ in range(steps):
        opt.zero_grad()
        y, _ = forward(torch.randn(4, 10, 3) * 10)
        (-(y**2).sum()).backward()
        opt.step()


def assert_u_bounded(layer, bound=BOUND):
    us = stored_u(layer)
    assert all(u.abs().max() <= bound + 1e-6 for u in us)
    assert any((u.abs().max() - bound).abs() < 1e-6 for u in us), "bound never reached"


@pytest.mark.parametrize("name", ["indrnn", "res_indrnn", "dense_indrnn"])
def test_u_bound_survives_deepcopy(name):
    import copy

    layer = rnn.build(name, 3, 8, 2, gamma=2.0, max_len=10)
    twin = copy.deepcopy(layer)
    push_u_outwards(twin)
    assert_u_bounded(twin)
    # the bound is the copy's own state: tightening it there leaves the original's alone
    for cell in (m for m in twin.modules() if isinstance(m, IndRNNCell)):
        cell.u_max = 0.5
    push_u_outwards(twin)
    push_u_outwards(layer)
    assert_u_bounded(twin, 0.5)
    assert_u_bounded(layer)


def test_u_bound_survives_averaged_model():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    layer = rnn.build("indrnn", 3, 8, 2, gamma=2.0, max_len=10)
    for avg in (AveragedModel(layer), AveragedModel(layer, multi_avg_fn=get_ema_multi_avg_fn(0.9))):
        push_u_outwards(avg, avg.module)
        assert_u_bounded(avg.module)
        push_u_outwards(layer)
        avg.update_parameters(layer)
        assert all(u.abs().max() <= BOUND + 1e-6 for u in stored_u(avg.module))


@pytest.mark.parametrize("assign", [False, True])
def test_u_bound_survives_state_dict_round_trip(assign):
    layer = rnn.build("res_indrnn", 3, 8, 3, gamma=2.0, max_len=10)
    fresh = rnn.build("res_indrnn", 3, 8, 3, gamma=2.0, max_len=10)
    fresh.load_state_dict(layer.state_dict(), assign=assign)  # assign: new Parameter objects
    push_u_outwards(fresh)
    assert_u_bounded(fresh)


def test_u_bound_survives_pickling_and_weight_dropout(tmp_path):
    from toolkit.nn.regularization import apply_weight_dropout

    layer = rnn.build("indrnn", 3, 8, 2, gamma=2.0, max_len=10)
    torch.save(layer, tmp_path / "layer.pt")
    loaded = torch.load(tmp_path / "layer.pt", weights_only=False)
    push_u_outwards(loaded)
    assert_u_bounded(loaded)
    assert apply_weight_dropout(layer, 0.1)  # u behind a DropConnect parametrisation
    push_u_outwards(layer)
    assert_u_bounded(layer)


def test_norm_is_one_option_name():
    for name in ("indrnn", "res_indrnn", "dense_indrnn"):
        assert "norm" in rnn.options(name) and "batch_norm" not in rnn.options(name)
    torch.manual_seed(0)
    new = rnn.build("indrnn", 3, 4, 2, norm="seq")
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match="'batch_norm' is now called 'norm'"):
        old = rnn.build("indrnn", 3, 4, 2, batch_norm="seq")
    assert old.layers[0][0].norm_mode == "seq"
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(old.eval()(x)[0], new.eval()(x)[0])
    with pytest.raises(ValueError, match="not both"):
        rnn.build("indrnn", 3, 4, norm="seq", batch_norm="seq")
    with pytest.raises(ValueError, match="unknown option.*batch_norm"):
        rnn.build("res_indrnn", 3, 4, batch_norm="seq")


def test_indrnn_initialisation_options():
    layer = rnn.build("indrnn", 3, 500, 2, u_max=0.9, last_layer_u_init=(0.5, 0.6))
    first, last = layer.layers[0][0].u, layer.layers[1][0].u
    assert 0.0 <= first.min() and first.max() <= 0.9 and first.max() > 0.8
    assert 0.5 <= last.min() and last.max() <= 0.6
    with pytest.raises(ValueError, match="u_init"):
        rnn.build("indrnn", 3, 4, u_max=0.5, u_init=(0.0, 0.9))
    with pytest.raises(ValueError, match="either u_max"):
        rnn.build("indrnn", 3, 4, u_max=0.5, gamma=2.0, max_len=5)
    # input weights: He by default (std sqrt(2 / fan_in) for relu), or N(0, input_std^2) in every layer
    he = rnn.build("indrnn", 400, 500, 2).layers[0][0].input.weight
    assert abs(he.std().item() - (2.0 / 400) ** 0.5) < 0.005
    small = rnn.build("indrnn", 400, 500, 2, input_std=0.001)
    for cell in (small.layers[0][0], small.layers[1][0]):
        assert abs(cell.input.weight.std().item() - 0.001) < 0.0001
    with pytest.raises(ValueError, match="input_std"):
        rnn.build("indrnn", 3, 4, input_std=0.0)


@pytest.mark.parametrize("scale", [1.0, 0.01])
def test_irnn_starts_at_identity(scale):
    layer = rnn.build("irnn", 3, 16, 2, scale=scale)
    for k in range(2):
        torch.testing.assert_close(getattr(layer.rnn, f"weight_hh_l{k}"), scale * torch.eye(16))
        assert torch.all(getattr(layer.rnn, f"bias_hh_l{k}") == 0) and torch.all(
            getattr(layer.rnn, f"bias_ih_l{k}") == 0
        )
    w = rnn.build("irnn", 200, 200).rnn.weight_ih_l0
    assert abs(w.std().item() - 0.001) < 1e-4 and abs(w.mean().item()) < 1e-4


def test_lstm_forget_bias():
    layer = rnn.build("lstm", 3, 5, forget_bias=2.0)
    total = layer.rnn.bias_ih_l0 + layer.rnn.bias_hh_l0
    assert torch.all(total[5:10] == 2.0)


def test_leaky_time_scales_spread():
    cell = rnn.build("leaky", 3, 8, tau_min=1.0, tau_max=128.0).layers[0][0]
    tau = 1 / (1 - cell.alpha.clamp(max=1 - 1e-4))
    assert tau.min() < 1.01 and 100 < tau.max() < 130 and torch.all(tau[1:] > tau[:-1])


def test_clockwork_slow_modules_hold_their_value():
    layer = rnn.build("clockwork", 2, 4, num_modules=4)
    y, (state,) = layer(torch.randn(1, 8, 2))
    # module 3 (period 8) updates only at t = 0; module 2 (period 4) at t = 0 and 4
    assert torch.all(y[0, 1:, 3] == y[0, 0, 3])
    assert torch.all(y[0, 1:4, 2] == y[0, 0, 2]) and y[0, 4, 2] != y[0, 3, 2]
    assert state[0][1].tolist() == [8]  # the clock is carried


def test_deep_res_indrnn_learns_toy_task():
    """21 IndRNN layers: learn to output the running mean of the input's first feature."""
    torch.manual_seed(0)
    layer = rnn.build("res_indrnn", 2, 16, 21)
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=3e-3)
    losses = []
    for _ in range(60):
        x = torch.randn(16, 12, 2)
        target = x[..., :1].cumsum(1) / torch.arange(1, 13).view(1, 12, 1)
        y, _ = layer(x)
        loss = torch.nn.functional.mse_loss(head(y), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:5]) / 5


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m(torch.randn(2, 5)), "shape"),
        (lambda m: m(torch.randn(2, 5, 4)), "features"),
        (lambda m: m(torch.randn(2, 5, 3), torch.tensor([6, 2])), "lengths"),
        (lambda m: m(torch.randn(2, 5, 3), torch.tensor([0, 2])), "lengths"),
        (lambda m: m(torch.randn(2, 5, 3), torch.tensor([2])), "lengths"),
        (lambda m: m(torch.randn(2, 5, 3), None, "junk"), "state"),
    ],
)
@pytest.mark.parametrize("name", ALL)
def test_bad_input_raises_value_error(name, call, match):
    layer = make(name)
    with pytest.raises(ValueError, match=match):
        call(layer)


def test_bad_names_and_options():
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        rnn.build("nope", 3, 4)
    with pytest.raises(ValueError, match="unknown option.*colour"):
        rnn.build("indrnn", 3, 4, colour="red")
    with pytest.raises(ValueError, match="hidden_size"):
        rnn.build("lstm", 3, 0)
    with pytest.raises(ValueError, match="activation"):
        rnn.build("indrnn", 3, 4, activation="swish")


@pytest.mark.parametrize("name", [n for n in ALL if n != "lstm"])
def test_width_for_params_matches_lstm(name):
    budget = rnn.num_params("lstm", 80, 256, 2)
    width = rnn.width_for_params(name, budget, 80, 2)
    assert abs(rnn.num_params(name, 80, width, 2) - budget) <= 0.02 * budget


def test_state_helpers_follow_hypotheses():
    layer = make("lstm")
    x = torch.randn(3, 4, 3)
    _, state = layer(x)
    picked = rnn.select_state(state, torch.tensor([2, 0]))
    y_picked, _ = layer(x[[2, 0], :1], None, picked)
    y_full, _ = layer(x[:, :1], None, state)
    torch.testing.assert_close(y_picked, y_full[[2, 0]])
    assert not any(t.requires_grad for t in _leaves(rnn.detach_state(state)))
