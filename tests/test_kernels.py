"""The plain-PyTorch recurrence kernels against the step-by-step equation."""

from __future__ import annotations

import types

import pytest
import torch
from test_kernels_cases import ACTS, LENGTHS, TOLERANCES, assert_close, make_inputs, reference, values_and_grads

from toolkit.nn import kernels
from toolkit.nn.kernels import elementwise_recurrence


def _impl(name):
    def run(a, u, h0, lens, activation, reverse):
        return elementwise_recurrence(a, u, h0, activation, lengths=lens, reverse=reverse, return_last=True, impl=name)

    return run


@pytest.mark.parametrize("impl", ["cpu", "loop"])
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
@pytest.mark.parametrize("lengths", list(LENGTHS))
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_matches_reference(impl, activation, dtype, lengths, reverse):
    inputs = make_inputs(dtype, LENGTHS[lengths])
    got = values_and_grads(_impl(impl), *inputs, activation=activation, reverse=reverse)
    want = values_and_grads(reference, *inputs, activation=activation, reverse=reverse)
    assert got[0].dtype == torch.float64  # compared in float64; storage dtype checked below
    assert_close(got, want, TOLERANCES[dtype])


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("use", ["h_only", "last_only"])
def test_one_output_used(activation, use):
    """Backward with only one of (h, last) receiving a gradient (the other's grad is None)."""
    inputs = make_inputs(torch.float32, LENGTHS["mixed"])
    flags = dict(use_h=use == "h_only", use_last=use == "last_only")
    got = values_and_grads(_impl("cpu"), *inputs, activation=activation, reverse=False, **flags)
    want = values_and_grads(reference, *inputs, activation=activation, reverse=False, **flags)
    assert_close(got, want, 1e-5)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_gradcheck_float64(activation, reverse):
    g = torch.Generator().manual_seed(3)
    a = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    u = (torch.rand(3, generator=g, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    h0 = torch.randn(2, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([5, 3])

    def fn(a, u, h0):
        h, last = elementwise_recurrence(
            a, u, h0, activation, lengths=lens, reverse=reverse, return_last=True, impl="cpu"
        )
        return h, last

    assert torch.autograd.gradcheck(fn, (a, u, h0))


def test_output_dtype_and_default_signature():
    a, u, h0, *_ = make_inputs(torch.bfloat16, None)
    h = elementwise_recurrence(a, u, h0, "relu")
    assert h.dtype == torch.bfloat16 and h.shape == a.shape
    h64 = elementwise_recurrence(a.double(), u.double(), h0.double(), "tanh")
    assert h64.dtype == torch.float64


def test_padding_outputs_zero_and_state_frozen():
    a, u, h0, *_ = make_inputs(torch.float32, None)
    lens = torch.tensor([6, 2, 4])
    for reverse in (False, True):
        h, last = elementwise_recurrence(a, u, h0, "tanh", lengths=lens, reverse=reverse, return_last=True)
        assert h[1, 2:].abs().max() == 0 and h[2, 4:].abs().max() == 0
        # the final state of a short sequence is its own last step, not a padded one
        alone = elementwise_recurrence(a[1:2, :2], u, h0[1:2], "tanh", reverse=reverse, return_last=True)[1]
        torch.testing.assert_close(last[1:2], alone)


def test_chunks_with_carried_state_equal_whole():
    a, u, h0, *_ = make_inputs(torch.float32, None, shape=(2, 9, 4))
    whole = elementwise_recurrence(a, u, h0, "relu")
    first, state = elementwise_recurrence(a[:, :4], u, h0, "relu", return_last=True)
    second = elementwise_recurrence(a[:, 4:], u, state, "relu")
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_long_sequence_backward_is_linear_not_quadratic():
    """T=2000 runs through the hand-written backward without building a per-step graph."""
    a = torch.randn(2, 2000, 8, requires_grad=True)
    u = torch.full((8,), 0.5, requires_grad=True)
    h = elementwise_recurrence(a, u, torch.zeros(2, 8), "relu")
    # one autograd node for the whole recurrence, fed straight by the leaves (a loop chains 2 per step)
    assert type(h.grad_fn).__name__ == "_RecurrenceBackward"
    parents = {type(fn).__name__ for fn, _ in h.grad_fn.next_functions if fn is not None}
    assert parents == {"AccumulateGrad"}
    h.sum().backward()
    assert torch.isfinite(a.grad).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(activation="gelu"), "unknown activation"),
        (dict(impl="cuda_magic"), "impl must be one of"),
        (dict(lengths=torch.tensor([1, 9, 1])), "lengths must lie in"),
        (dict(lengths=torch.tensor([1.0, 2.0, 3.0])), "lengths must be"),
    ],
)
def test_bad_arguments(kwargs, message):
    a, u, h0, *_ = make_inputs(torch.float32, None)
    with pytest.raises(ValueError, match=message):
        elementwise_recurrence(a, u, h0, **kwargs)
    with pytest.raises(ValueError, match="u must have shape"):
        elementwise_recurrence(a, u[:2], h0)
    with pytest.raises(ValueError, match="h0 must have shape"):
        elementwise_recurrence(a, u, h0[:1])


def test_auto_dispatch(monkeypatch):
    """CUDA tensors go to the fused Triton kernel when Triton imports; everything else to the CPU loop."""
    cuda_like = types.SimpleNamespace(is_cuda=True)
    cpu_like = types.SimpleNamespace(is_cuda=False)
    monkeypatch.setattr(kernels, "triton_available", lambda: True)
    assert kernels._resolve("auto", cuda_like) == "triton"
    assert kernels._resolve("auto", cpu_like) == "cpu"
    monkeypatch.setattr(kernels, "triton_available", lambda: False)
    assert kernels._resolve("auto", cuda_like) == "cpu"
    assert kernels._resolve("reference", cuda_like) == "reference"


def test_use_impl_switches_the_layer_path(monkeypatch):
    """Inside ``use_impl("loop")`` an IndRNN layer runs the autograd loop, with the same result."""
    from toolkit import nn as rnn

    calls = []
    loop = kernels.elementwise_recurrence_loop
    monkeypatch.setattr(kernels, "elementwise_recurrence_loop", lambda *a: calls.append(1) or loop(*a))
    layer = rnn.build("indrnn", input_size=4, hidden_size=6, num_layers=1)
    x, lens = torch.randn(3, 7, 4), torch.tensor([7, 5, 2])
    y_fast, state_fast = layer(x, lens)
    assert not calls
    with kernels.use_impl("loop"):
        y_loop, state_loop = layer(x, lens)
    assert calls and kernels._default_impl == "auto"
    torch.testing.assert_close(y_fast, y_loop)
    torch.testing.assert_close(state_fast[0][0], state_loop[0][0])
    with pytest.raises(ValueError, match="impl must be one of"), kernels.use_impl("fast"):
        pass


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_overwrite_a_same_values_and_grads(reverse):
    """h may be written over the projection's output (a reshape of a non-leaf): results unchanged."""
    g = torch.Generator().manual_seed(4)
    proj = torch.nn.Linear(3, 5)
    x = torch.randn(2, 6, 3, generator=g, requires_grad=True)
    u = torch.rand(5, generator=g, requires_grad=True)
    h0, lens = torch.zeros(2, 5), torch.tensor([6, 4])
    results = []
    for overwrite in (False, True):
        x.grad = u.grad = None
        a = proj(x)
        h, last = elementwise_recurrence(
            a, u, h0, "tanh", lengths=lens, reverse=reverse, return_last=True, overwrite_a=overwrite
        )
        if not reverse:
            assert (h.data_ptr() == a.data_ptr()) == overwrite
        (h.square().sum() + last.sum()).backward()
        results.append((h.detach(), last.detach(), x.grad.clone(), u.grad.clone()))
    for want, got in zip(*results, strict=True):
        torch.testing.assert_close(got, want)


def test_overwrite_a_skipped_for_a_leaf_that_requires_grad():
    a, u, h0, *_ = make_inputs(torch.float32, None)
    a.requires_grad_()
    before = a.detach().clone()
    h = elementwise_recurrence(a, u, h0, "relu", overwrite_a=True)
    h.sum().backward()
    assert torch.equal(a.detach(), before) and a.grad is not None


def test_thread_count_restored_after_serial_loops():
    """The loops run single-threaded at small sizes and put the thread count back."""
    before = torch.get_num_threads()
    a, u, h0, *_ = make_inputs(torch.float32, None)
    a.requires_grad_()
    elementwise_recurrence(a, u, h0, "tanh").sum().backward()
    assert torch.get_num_threads() == before
