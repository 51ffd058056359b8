"""The compiled CPU loops (``toolkit/nn/kernels/cpp_kernel.py``) against the PyTorch loop they replace and
against the step-by-step equation; their fallback when they cannot be built.

The first test to need them builds them (about a minute, once; cached by torch.utils.cpp_extension). Without
a C++ compiler they are unavailable and these tests skip, except the fallback ones.
"""

from __future__ import annotations

import pytest
import torch
from test_kernels_cases import ACTS, LENGTHS, assert_close, make_inputs, reference, values_and_grads

from toolkit import nn as rnn
from toolkit.nn.kernels import cpp_kernel, elementwise_recurrence

needs_build = pytest.mark.skipif(not cpp_kernel.cpp_available(), reason="the compiled CPU loops did not build here")


def _cpu(compiled: bool):
    def run(a, u, h0, lens, activation, reverse):
        with cpp_kernel.use_compiled(compiled):
            return elementwise_recurrence(
                a, u, h0, activation, lengths=lens, reverse=reverse, return_last=True, impl="cpu"
            )

    return run


@needs_build
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("lengths", list(LENGTHS))
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("use", ["both", "h_only", "last_only"])
def test_compiled_matches_pytorch_loop_and_reference(activation, lengths, reverse, use):
    inputs = make_inputs(torch.float32, LENGTHS[lengths], shape=(3, 6, 37))
    flags = dict(use_h=use != "last_only", use_last=use != "h_only")
    got = values_and_grads(_cpu(True), *inputs, activation=activation, reverse=reverse, **flags)
    loop = values_and_grads(_cpu(False), *inputs, activation=activation, reverse=reverse, **flags)
    want = values_and_grads(reference, *inputs, activation=activation, reverse=reverse, **flags)
    assert_close(got, loop, 1e-5)
    assert_close(got, want, 1e-5)


@needs_build
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_compiled_gradcheck_float64(activation, reverse):
    g = torch.Generator().manual_seed(5)
    a = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    u = (torch.rand(4, generator=g, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    h0 = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    lens = torch.tensor([5, 0, 3])

    def fn(a, u, h0):
        return _cpu(True)(a, u, h0, lens, activation, reverse)

    assert torch.autograd.gradcheck(fn, (a, u, h0))


@needs_build
def test_compiled_loops_run_and_write_in_place():
    """One autograd node as before; overwrite_a writes h over the projection's own output."""
    layer = rnn.build("indrnn", input_size=4, hidden_size=16, num_layers=2)
    x = torch.randn(3, 50, 4)
    calls = []
    original = cpp_kernel.CompiledLoops.forward
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cpp_kernel.CompiledLoops, "forward", lambda self, *a: calls.append(1) or original(self, *a))
        y, _ = layer(x, torch.tensor([50, 20, 1]))
    y.sum().backward()
    assert len(calls) == 2  # both layers took the compiled loops
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    with cpp_kernel.use_compiled(False):
        y_loop, _ = layer(x, torch.tensor([50, 20, 1]))
    y_loop.sum().backward()
    torch.testing.assert_close(y, y_loop, atol=1e-5, rtol=1e-5)
    for got, want in zip(grads, (p.grad for p in layer.parameters()), strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@needs_build
def test_denormals_flushed_inside_restored_after():
    """A gradient decaying over many steps ends at zero, not in denormals; the thread's float mode is unchanged."""
    a = torch.zeros(1, 400, 8, requires_grad=True)
    u = torch.full((8,), 0.5)
    h, last = elementwise_recurrence(a, u, torch.ones(1, 8), "identity", return_last=True, impl="cpu")
    last.sum().backward()  # dL/da_t = 0.5 ** (399 - t): below 1.2e-38 for the first ~270 steps
    g = a.grad[0, :, 0]
    assert g[-1] == 1 and g[0] == 0
    assert not ((g != 0) & (g.abs() < torch.finfo(torch.float32).tiny)).any()
    tiny = torch.tensor([1e-39]) * torch.tensor([1.0])  # denormal arithmetic still works outside
    assert tiny.item() != 0


def test_fallback_when_not_built(monkeypatch):
    """No compiler (or RECUR_CPU_KERNEL=python): the PyTorch loop runs, with the same results."""
    monkeypatch.setattr(cpp_kernel, "cpp_available", lambda: False)
    assert cpp_kernel.compiled_loops(torch.zeros(1, 1, 1)) is None
    inputs = make_inputs(torch.float32, LENGTHS["mixed"])
    got = values_and_grads(_cpu(True), *inputs, activation="relu", reverse=False)
    want = values_and_grads(reference, *inputs, activation="relu", reverse=False)
    assert_close(got, want, 1e-5)


def test_16_bit_takes_the_pytorch_loop():
    assert cpp_kernel.compiled_loops(torch.zeros(1, 1, 1, dtype=torch.bfloat16)) is None
    with cpp_kernel.use_compiled(False):
        assert cpp_kernel.compiled_loops(torch.zeros(1, 1, 1)) is None


def test_no_compiler_falls_back_in_a_fresh_process(tmp_path):
    """With no usable C++ compiler (and nothing cached) the build fails quietly and layers still train."""
    import os
    import subprocess
    import sys

    code = (
        "import torch; from toolkit import nn as rnn; from toolkit.nn.kernels import cpp_kernel\n"
        "layer = rnn.build('indrnn', input_size=3, hidden_size=8, num_layers=1)\n"
        "y, _ = layer(torch.randn(2, 5, 3)); y.sum().backward()\n"
        "print(cpp_kernel.cpp_available(), cpp_kernel.unavailable_reason is not None)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout, not an installed copy
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "CXX": "/bin/false", "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False True"
