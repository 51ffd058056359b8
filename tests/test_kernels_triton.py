"""The fused Triton kernels, run on CPU by Triton's interpreter, against the step-by-step equation.

TRITON_INTERPRET must be set when the kernels are defined and while they run, so this module loads
its own copy of ``toolkit/nn/kernels/triton_kernel.py`` under the variable, leaving the package's
module (compiled kernels, on a GPU machine) untouched.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

pytest.importorskip("triton")

from test_kernels_cases import (  # noqa: E402
    ACTS,
    LENGTHS,
    TOLERANCES,
    assert_close,
    make_inputs,
    reference,
    values_and_grads,
)

import toolkit.nn.kernels as kernels_pkg  # noqa: E402


@pytest.fixture(scope="module")
def interpreted():
    path = os.path.join(os.path.dirname(kernels_pkg.__file__), "triton_kernel.py")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITON_INTERPRET", "1")
        # named inside the package so its relative imports resolve
        spec = importlib.util.spec_from_file_location("toolkit.nn.kernels.triton_kernel_interpreted", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    # the interpreter runs every unrolled step of a chunk in Python: small chunks keep the cases fast
    # (lengths 3 and 1 end inside a chunk); one test below runs the compiled chunk size
    module.CHUNK = 2
    return module


@pytest.fixture(autouse=True)
def _interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _fused(module):
    def run(a, u, h0, lens, activation, reverse):
        return module.elementwise_recurrence_triton(a, u, h0, activation, lens, reverse)

    return run


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
@pytest.mark.parametrize("lengths", list(LENGTHS))
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_matches_reference(interpreted, activation, dtype, lengths, reverse):
    inputs = make_inputs(dtype, LENGTHS[lengths])
    got = values_and_grads(_fused(interpreted), *inputs, activation=activation, reverse=reverse)
    want = values_and_grads(reference, *inputs, activation=activation, reverse=reverse)
    assert_close(got, want, TOLERANCES[dtype])


@pytest.mark.parametrize("use", ["h_only", "last_only"])
def test_one_output_used(interpreted, use):
    inputs = make_inputs(torch.float32, LENGTHS["mixed"])
    flags = dict(use_h=use == "h_only", use_last=use == "last_only")
    got = values_and_grads(_fused(interpreted), *inputs, activation="relu", reverse=False, **flags)
    want = values_and_grads(reference, *inputs, activation="relu", reverse=False, **flags)
    assert_close(got, want, 1e-5)


def test_storage_dtype_and_hidden_wider_than_a_block(interpreted):
    """H not a multiple of the block (masked tail) and several blocks per row; non-contiguous a."""
    block, _ = interpreted.launch_config(2, 300)
    hidden = block + 44
    g = torch.Generator().manual_seed(5)
    base = torch.randn(2, 4, 2 * hidden, generator=g)
    a = base[..., ::2]  # last-dim stride 2: the wrapper must cope
    u, h0 = torch.rand(hidden, generator=g), torch.randn(2, hidden, generator=g)
    h, last = interpreted.elementwise_recurrence_triton(a.to(torch.float16), u, h0, "tanh")
    assert h.dtype == torch.float16 and last.dtype == torch.float16
    want, want_last = reference(a.to(torch.float16), u, h0, None, "tanh")
    torch.testing.assert_close(h.double(), want, atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(last.double(), want_last, atol=2e-3, rtol=2e-3)


def test_long_tanh_input_does_not_overflow(interpreted):
    a = torch.tensor([[[60.0, -60.0, 1e-3]]]).expand(1, 3, 3).contiguous()
    h = interpreted.elementwise_recurrence_triton(a, torch.zeros(3), torch.zeros(1, 3), "tanh")[0]
    torch.testing.assert_close(h, torch.tanh(a), atol=1e-6, rtol=1e-5)


def test_default_chunk_size(interpreted, monkeypatch):
    """The chunk size the GPU runs, over several chunks with ragged lengths, both directions."""
    monkeypatch.setattr(interpreted, "CHUNK", 16)
    inputs = make_inputs(torch.float32, [17, 16, 1], shape=(3, 17, 5))
    got = values_and_grads(_fused(interpreted), *inputs, activation="tanh", reverse=True)
    want = values_and_grads(reference, *inputs, activation="tanh", reverse=True)
    assert_close(got, want, 1e-5)


def test_overwrite_a_in_place(interpreted):
    """h written over the projection's own output: same values and gradients, one buffer fewer."""
    g = torch.Generator().manual_seed(2)
    proj = torch.nn.Linear(3, 5)
    x = torch.randn(2, 6, 3, generator=g, requires_grad=True)
    u, h0, lens = torch.rand(5, generator=g), torch.zeros(2, 5), torch.tensor([6, 4])
    results = []
    for inplace in (False, True):
        x.grad = None
        a = proj(x)
        h, last = interpreted.elementwise_recurrence_triton(a, u, h0, "relu", lens, False, inplace)
        assert (h.data_ptr() == a.data_ptr()) == inplace
        (h.square().sum() + last.sum()).backward()
        results.append((h.detach(), last.detach(), x.grad.clone()))
    for want, got in zip(*results, strict=True):
        torch.testing.assert_close(got, want)
