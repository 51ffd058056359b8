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


def make_case(model: str, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], None]:
    """A closure running one forward+backward of ``model`` on x (B, T, H) with upstream gradient ``grad``.

    ``x`` must require grad (as inside a stack, the input's gradient is computed too). Gradients
    are cleared each call so nothing accumulates across repeats.
    """
    hidden = x.shape[-1]
    if model == "recurrence":
        gen = torch.Generator(device=x.device).manual_seed(0)
        u = torch.rand(hidden, device=x.device, dtype=torch.float32, generator=gen).requires_grad_()
        h0 = torch.zeros(x.shape[0], hidden, device=x.device, dtype=torch.float32)

        def run_kernel() -> None:
            x.grad = u.grad = None
            kernels.elementwise_recurrence(x, u, h0, "relu").backward(grad)

        return run_kernel
    module = _module(model, hidden).to(device=x.device, dtype=x.dtype)
    params = list(module.parameters())
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


def recurrence_forward(x: torch.Tensor) -> Callable[[], None]:
    """The recurrence kernel's forward alone on a = x (no graph), for its bytes/s."""
    gen = torch.Generator(device=x.device).manual_seed(1)
    u = torch.rand(x.shape[-1], device=x.device, generator=gen)
    h0 = torch.zeros(x.shape[0], x.shape[-1], device=x.device)

    def run() -> None:
        with torch.no_grad():
            kernels.elementwise_recurrence(x, u, h0, "relu")

    return run


def make_inputs(steps: int, batch: int, hidden: int, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """x (B, T, H) requiring grad and an upstream gradient of the same shape, shared by every model."""
    gen = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, steps, hidden, device=device, dtype=dtype, generator=gen).requires_grad_()
    grad = torch.randn(batch, steps, hidden, device=device, dtype=dtype, generator=gen)
    return x, grad
