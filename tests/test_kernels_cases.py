"""Shared cases for the recurrence-kernel tests (no tests here): inputs, values + gradients to compare."""

from __future__ import annotations

import torch

from toolkit.nn.kernels import elementwise_recurrence_reference

ACTS = ("relu", "tanh", "identity")
# every length pattern the kernels branch on: none given, all full, mixed, an empty sequence
LENGTHS = {"none": None, "full": [6, 6, 6], "mixed": [6, 2, 4], "with_empty": [3, 0, 1]}
# storage dtype -> tolerance relative to the largest magnitude (16-bit: one rounding of h per step)
TOLERANCES = {torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 5e-3}


def make_inputs(dtype: torch.dtype, lengths: list[int] | None, seed: int = 0, shape=(3, 6, 5)):
    """a (B, T, H) in ``dtype``, u (H,) in (-1, 1), h0 (B, H), lengths, upstream grads (fp32)."""
    g = torch.Generator().manual_seed(seed)
    batch, steps, hidden = shape
    a = torch.randn(batch, steps, hidden, generator=g).to(dtype)
    u = torch.rand(hidden, generator=g) * 2 - 1
    h0 = torch.randn(batch, hidden, generator=g)
    g_h = torch.randn(batch, steps, hidden, generator=g)
    g_last = torch.randn(batch, hidden, generator=g)
    lens = None if lengths is None else torch.tensor(lengths)
    return a, u, h0, lens, g_h, g_last


def values_and_grads(fn, a, u, h0, lens, g_h, g_last, use_h=True, use_last=True, **kw):
    """Run ``fn(a, u, h0, lengths, **kw) -> (h, last)`` and backprop the given upstream grads.

    Returns [h, last, dL/da, dL/du, dL/dh0] as float64.
    """
    a, u, h0 = (t.detach().clone().requires_grad_() for t in (a, u, h0))
    h, last = fn(a, u, h0, lens, **kw)
    loss = 0.0
    if use_h:
        loss = loss + (h.double() * g_h.double()).sum()
    if use_last:
        loss = loss + (last.double() * g_last.double()).sum()
    loss.backward()
    return [t.detach().double() for t in (h, last, a.grad, u.grad, h0.grad)]


def reference(a, u, h0, lens, activation, reverse=False):
    """The step-by-step equation in float64 (computed from the same, possibly rounded, a)."""
    return elementwise_recurrence_reference(
        a.double(), u.double(), h0.double(), activation, lengths=lens, reverse=reverse, return_last=True
    )


def assert_close(got: list[torch.Tensor], want: list[torch.Tensor], tol: float) -> None:
    for name, x, y in zip(("h", "last", "grad_a", "grad_u", "grad_h0"), got, want, strict=True):
        scale = 1.0 + y.abs().max().item()
        err = (x - y).abs().max().item() / scale
        assert err <= tol, f"{name}: error {err:.3g} > {tol:g}"
