"""On a CUDA machine: the compiled Triton kernels and the layer's automatic use of them."""

from __future__ import annotations

import pytest
import torch
from test_kernels_cases import ACTS, assert_close, make_inputs, reference, values_and_grads

from toolkit import nn as rnn
from toolkit.nn.kernels import elementwise_recurrence, triton_available

pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and Triton")


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_compiled_kernel_matches_reference(activation, dtype, reverse):
    inputs = make_inputs(dtype, [37, 5, 64, 1], shape=(4, 64, 300))
    cuda = [t.cuda() if t is not None else None for t in inputs]

    def fused(a, u, h0, lens, activation, reverse):
        return elementwise_recurrence(
            a, u, h0, activation, lengths=lens, reverse=reverse, return_last=True, impl="triton"
        )

    got = [t.cpu() for t in values_and_grads(fused, *cuda, activation=activation, reverse=reverse)]
    want = values_and_grads(reference, *inputs, activation=activation, reverse=reverse)
    assert_close(got, want, 1e-4 if dtype == torch.float32 else 3e-2)


def test_indrnn_layer_uses_fused_kernel_on_cuda(monkeypatch):
    from toolkit.nn.kernels import triton_kernel

    calls = []
    original = triton_kernel.elementwise_recurrence_triton
    monkeypatch.setattr(triton_kernel, "elementwise_recurrence_triton", lambda *a: calls.append(1) or original(*a))
    layer = rnn.build("indrnn", input_size=8, hidden_size=16, num_layers=2, bidirectional=True).cuda()
    x = torch.randn(3, 10, 8, device="cuda")
    y, _ = layer(x, torch.tensor([10, 7, 3], device="cuda"))
    y.sum().backward()
    assert len(calls) == 4  # 2 layers x 2 directions
    layer_cpu = rnn.build("indrnn", input_size=8, hidden_size=16, num_layers=2, bidirectional=True)
    layer_cpu.load_state_dict(layer.state_dict())
    y_cpu, _ = layer_cpu(x.cpu(), torch.tensor([10, 7, 3]))
    torch.testing.assert_close(y.cpu(), y_cpu, atol=1e-4, rtol=1e-4)
