"""One benchmark case: a layer's forward+backward on fixed random data, as a closure to time."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from toolkit import nn as rnn
from toolkit.nn import kernels

# model name -> what the row measures
MODELS = {
    "indrnn": "IndRNN layer (projection + fused recurrence)",
    "indrnn_loop": "IndRNN layer, recurrence as the plain autograd loop",
    "irnn": "nn.RNN(relu) (IRNN)",
    "lstm": "nn.LSTM",
    "gru": "nn.GRU",
    "projection": "the IndRNN layer's input matmul alone (nn.Linear)",
    "recurrence": "the recurrence kernel alone on precomputed W x + b",
}
LAYER_MODELS = ("indrnn", "indrnn_loop", "irnn", "lstm", "gru")


def _module(model: str, hidden: int) -> nn.Module:
    if model in ("indrnn", "indrnn_loop"):
        return rnn.build("indrnn", input_size=hidden, hidden_size=hidden, num_layers=1)
    if model == "irnn":
        return nn.RNN(hidden, hidden, nonlinearity="relu", batch_first=True)
    if model == "lstm":
        return nn.LSTM(hidden, hidden, batch_first=True)
    if model == "gru":
        return nn.GRU(hidden, hidden, batch_first=True)
    if model == "projection":
        return nn.Linear(hidden, hidden)
    raise ValueError(f"unknown benchmark model {model!r}; choose one of {', '.join(MODELS)}")


def make_case(
    model: str, steps: int, batch: int, hidden: int, device: torch.device, dtype: torch.dtype, seed: int = 0
) -> Callable[[], None]:
    """A closure running one forward+backward of ``model`` on x (batch, steps, hidden).

    The input requires grad (as inside a stack); parameter grads are cleared each call so nothing
    accumulates across repeats.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, steps, hidden, device=device, dtype=dtype, generator=gen)
    grad = torch.randn(batch, steps, hidden, device=device, dtype=dtype, generator=gen)
    if model == "recurrence":
        a = x.requires_grad_()
        u = torch.rand(hidden, device=device, dtype=torch.float32, generator=gen).requires_grad_()
        h0 = torch.zeros(batch, hidden, device=device, dtype=torch.float32)

        def run_kernel() -> None:
            a.grad = u.grad = None
            kernels.elementwise_recurrence(a, u, h0, "relu").backward(grad)

        return run_kernel
    module = _module(model, hidden).to(device=device, dtype=dtype)
    params = list(module.parameters())
    x.requires_grad_()
    impl = "loop" if model == "indrnn_loop" else "auto"

    def run() -> None:
        x.grad = None
        for p in params:
            p.grad = None
        with kernels.use_impl(impl):
            out = module(x)
        y = out[0] if isinstance(out, tuple) else out
        y.backward(grad)

    return run


def recurrence_forward(
    steps: int, batch: int, hidden: int, device: torch.device, dtype: torch.dtype
) -> Callable[[], None]:
    """The recurrence kernel's forward alone (no graph), for its bytes/s."""
    gen = torch.Generator(device=device).manual_seed(1)
    a = torch.randn(batch, steps, hidden, device=device, dtype=dtype, generator=gen)
    u = torch.rand(hidden, device=device, generator=gen)
    h0 = torch.zeros(batch, hidden, device=device)

    def run() -> None:
        with torch.no_grad():
            kernels.elementwise_recurrence(a, u, h0, "relu")

    return run
