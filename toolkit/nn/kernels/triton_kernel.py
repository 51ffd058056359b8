"""Fused Triton kernels for the elementwise recurrence h_t = act(a_t + u * h_{t-1}).

One program owns one batch row and a block of hidden units; it keeps the state in registers
(float32) and walks time, so each element of ``a`` is read once and each ``h`` written once
(forward), and ``h``, ``dL/dh`` read once and ``dL/da`` written once (backward). The gradient
of ``u`` is summed over time inside each program and written as a (B, H) float32 partial, reduced
over the batch afterwards: no atomics.

Tests run these kernels on CPU tensors with ``TRITON_INTERPRET=1`` set before this module is
imported (``triton.jit`` reads it when the kernels are defined). The kernels use only Triton's
builtins, not its ``@jit``-written standard library (``tl.zeros``, ``tl.sigmoid``, ...): those are
defined when triton is first imported, so they would not be interpreted if triton was imported
before the variable was set.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

ACT_CODES = {"identity": 0, "relu": 1, "tanh": 2}


@triton.jit
def _act(z, ACT: tl.constexpr):
    if ACT == 1:
        z = tl.maximum(z, 0.0)
    elif ACT == 2:
        # tanh from exp (libdevice is not available to the interpreter); the sign form never overflows
        e = tl.exp(-2.0 * tl.abs(z))
        r = (1.0 - e) / (1.0 + e)
        z = tl.where(z < 0, -r, r)
    return z


@triton.jit
def _act_grad(h, ACT: tl.constexpr):
    """act'(z) written in terms of h = act(z)."""
    if ACT == 1:
        d = tl.where(h > 0, 1.0, 0.0)
    elif ACT == 2:
        d = 1.0 - h * h
    else:
        d = tl.full(h.shape, 1.0, tl.float32)
    return d


@triton.jit
def _recurrence_fwd(
    a_ptr, u_ptr, h0_ptr, len_ptr, h_ptr, last_ptr,
    T, H, stride_ab, stride_at, stride_h0b,
    ACT: tl.constexpr, REVERSE: tl.constexpr, HAS_LEN: tl.constexpr,
    BLOCK: tl.constexpr, STAGES: tl.constexpr,
):  # fmt: skip
    b = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < H
    u = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    h = tl.load(h0_ptr + b * stride_h0b + offs, mask=mask, other=0.0).to(tl.float32)
    n = T
    if HAS_LEN:
        n = tl.load(len_ptr + b).to(tl.int32)
    a_row = a_ptr + b * stride_ab + offs
    h_row = h_ptr + b * T * H + offs
    for s in tl.range(0, n, num_stages=STAGES):
        t = s
        if REVERSE:
            t = n - 1 - s
        x = tl.load(a_row + t * stride_at, mask=mask, other=0.0).to(tl.float32)
        h = _act(x + u * h, ACT)
        tl.store(h_row + t * H, h.to(h_ptr.dtype.element_ty), mask=mask)
    if HAS_LEN:
        zero = tl.full([BLOCK], 0.0, tl.float32).to(h_ptr.dtype.element_ty)
        for t in range(n, T):
            tl.store(h_row + t * H, zero, mask=mask)
    tl.store(last_ptr + b * H + offs, h.to(last_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _recurrence_bwd(
    gy_ptr, glast_ptr, h_ptr, u_ptr, h0_ptr, len_ptr, ga_ptr, gh0_ptr, gu_ptr,
    T, H, stride_gb, stride_gt, stride_h0b, stride_glb,
    ACT: tl.constexpr, REVERSE: tl.constexpr, HAS_LEN: tl.constexpr,
    HAS_GY: tl.constexpr, HAS_GLAST: tl.constexpr,
    BLOCK: tl.constexpr, STAGES: tl.constexpr,
):  # fmt: skip
    b = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < H
    u = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    h0 = tl.load(h0_ptr + b * stride_h0b + offs, mask=mask, other=0.0).to(tl.float32)
    n = T
    if HAS_LEN:
        n = tl.load(len_ptr + b).to(tl.int32)
    # carry = dL/dh of the step processed next (walking backwards): starts as the final-state gradient
    carry = tl.full([BLOCK], 0.0, tl.float32)
    if HAS_GLAST:
        carry = tl.load(glast_ptr + b * stride_glb + offs, mask=mask, other=0.0).to(tl.float32)
    h_row = h_ptr + b * T * H + offs
    ga_row = ga_ptr + b * T * H + offs
    gy_row = gy_ptr + b * stride_gb + offs
    g_u = tl.full([BLOCK], 0.0, tl.float32)
    # h at the step being processed; its predecessor is loaded once per step and carried over
    t_last = n - 1
    if REVERSE:
        t_last = 0
    h_t = tl.load(h_row + t_last * H, mask=mask & (n > 0), other=0.0).to(tl.float32)
    for s in tl.range(0, n, num_stages=STAGES):
        k = n - 1 - s  # index in processing order
        t = k
        t_prev = k - 1
        if REVERSE:
            t = n - 1 - k
            t_prev = t + 1
        g_h = carry
        if HAS_GY:
            g_h += tl.load(gy_row + t * stride_gt, mask=mask, other=0.0).to(tl.float32)
        g_z = g_h * _act_grad(h_t, ACT)
        tl.store(ga_row + t * H, g_z.to(ga_ptr.dtype.element_ty), mask=mask)
        h_prev = tl.load(h_row + t_prev * H, mask=mask & (k > 0), other=0.0).to(tl.float32)
        h_prev = tl.where(k > 0, h_prev, h0)
        g_u += g_z * h_prev
        carry = u * g_z
        h_t = h_prev
    if HAS_LEN:
        zero = tl.full([BLOCK], 0.0, tl.float32).to(ga_ptr.dtype.element_ty)
        for t in range(n, T):
            tl.store(ga_row + t * H, zero, mask=mask)
    tl.store(gh0_ptr + b * H + offs, carry, mask=mask)
    tl.store(gu_ptr + b * H + offs, g_u, mask=mask)


def launch_config(hidden: int) -> tuple[int, int]:
    """(BLOCK, num_warps): one or two elements per thread, so a row's block stays in registers.

    Chosen without a GPU to tune on (see the package note); small blocks give more programs, which
    the latency-bound sequential walk needs to keep memory busy.
    """
    block = min(256, triton.next_power_of_2(hidden))
    return block, max(1, min(4, block // 64))


STAGES = 3


class _FusedRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, u: Tensor, h0: Tensor, lengths: Tensor | None, activation: str, reverse: bool):
        batch, steps, hidden = a.shape
        if a.stride(2) != 1:
            a = a.contiguous()
        u = u.contiguous()
        h0 = h0 if h0.stride(1) == 1 else h0.contiguous()
        h = torch.empty(batch, steps, hidden, dtype=a.dtype, device=a.device)
        last = torch.empty(batch, hidden, dtype=a.dtype, device=a.device)
        lens = lengths.to(device=a.device, dtype=torch.int32).contiguous() if lengths is not None else h
        block, warps = launch_config(hidden)
        grid = (batch, triton.cdiv(hidden, block))
        _recurrence_fwd[grid](
            a, u, h0, lens, h, last, steps, hidden, a.stride(0), a.stride(1), h0.stride(0),
            ACT=ACT_CODES[activation], REVERSE=reverse, HAS_LEN=lengths is not None,
            BLOCK=block, STAGES=STAGES, num_warps=warps,
        )  # fmt: skip
        ctx.activation, ctx.reverse = activation, reverse
        ctx.save_for_backward(h, u, h0, lengths.to(device=a.device, dtype=torch.int32) if lengths is not None else None)
        return h, last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out: Tensor | None, g_last: Tensor | None):
        h, u, h0, lens = ctx.saved_tensors
        batch, steps, hidden = h.shape
        if g_out is not None and g_out.stride(2) != 1:
            g_out = g_out.contiguous()
        if g_last is not None and g_last.stride(1) != 1:
            g_last = g_last.contiguous()
        grad_a = torch.empty_like(h)
        grad_h0 = torch.empty(batch, hidden, dtype=torch.float32, device=h.device)
        grad_u = torch.empty(batch, hidden, dtype=torch.float32, device=h.device)
        gy = g_out if g_out is not None else h
        gl = g_last if g_last is not None else h0
        block, warps = launch_config(hidden)
        grid = (batch, triton.cdiv(hidden, block))
        _recurrence_bwd[grid](
            gy, gl, h, u, h0, lens if lens is not None else h, grad_a, grad_h0, grad_u,
            steps, hidden, gy.stride(0), gy.stride(1), h0.stride(0), gl.stride(0),
            ACT=ACT_CODES[ctx.activation], REVERSE=ctx.reverse, HAS_LEN=lens is not None,
            HAS_GY=g_out is not None, HAS_GLAST=g_last is not None,
            BLOCK=block, STAGES=STAGES, num_warps=warps,
        )  # fmt: skip
        return grad_a, grad_u.sum(0).to(u.dtype), grad_h0.to(h0.dtype), None, None, None


def elementwise_recurrence_triton(
    a: Tensor,
    u: Tensor,
    h0: Tensor,
    activation: str = "relu",
    lengths: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor]:
    """Fused recurrence. a: (B, T, H), u: (H,), h0: (B, H), lengths: (B,) or None.

    Returns (h (B, T, H), last (B, H)) in a's dtype, float32 accumulation inside.
    """
    return _FusedRecurrence.apply(a, u, h0, lengths, activation, reverse)
