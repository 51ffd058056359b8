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

from .cpu import writable_storage

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
def _add(x, y):
    return x + y


@triton.jit
def _row(tile, rows, i):
    """Row ``i`` (static) of a (CHUNK, BLOCK) register tile: (BLOCK,). Folds to a register pick once unrolled."""
    return tl.reduce(tl.where(rows[:, None] == i, tile, 0.0), 0, _add)


@triton.jit
def _recurrence_fwd(
    a_ptr, u_ptr, h0_ptr, len_ptr, h_ptr, last_ptr,
    T, H, stride_ab, stride_at, stride_h0b,
    ACT: tl.constexpr, REVERSE: tl.constexpr, HAS_LEN: tl.constexpr,
    BLOCK: tl.constexpr, CHUNK: tl.constexpr,
):  # fmt: skip
    b = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < H
    rows = tl.arange(0, CHUNK)
    u = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    h = tl.load(h0_ptr + b * stride_h0b + offs, mask=mask, other=0.0).to(tl.float32)
    n = T
    if HAS_LEN:
        n = tl.load(len_ptr + b).to(tl.int32)
    a_row = a_ptr + b * stride_ab + offs[None, :]
    h_row = h_ptr + b * T * H + offs[None, :]
    # CHUNK steps of `a` are loaded as one tile, so CHUNK loads are in flight while the
    # sequential part walks the tile; the outputs are gathered into a tile and stored at once.
    for c in range(0, n, CHUNK):
        s = c + rows
        t = s
        if REVERSE:
            t = n - 1 - s
        io_mask = (s < n)[:, None] & mask[None, :]
        x_tile = tl.load(a_row + t[:, None] * stride_at, mask=io_mask, other=0.0).to(tl.float32)
        out = tl.full([CHUNK, BLOCK], 0.0, tl.float32)
        for i in tl.static_range(CHUNK):
            h_new = _act(_row(x_tile, rows, i) + u * h, ACT)
            h = tl.where(c + i < n, h_new, h)
            out = tl.where(rows[:, None] == i, h[None, :], out)
        tl.store(h_row + t[:, None] * H, out.to(h_ptr.dtype.element_ty), mask=io_mask)
    if HAS_LEN:
        zero = tl.full([CHUNK, BLOCK], 0.0, tl.float32).to(h_ptr.dtype.element_ty)
        for c in range(n, T, CHUNK):
            t = c + rows
            tl.store(h_row + t[:, None] * H, zero, mask=(t < T)[:, None] & mask[None, :])
    tl.store(last_ptr + b * H + offs, h.to(last_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _recurrence_bwd(
    gy_ptr, glast_ptr, h_ptr, u_ptr, h0_ptr, len_ptr, ga_ptr, gh0_ptr, gu_ptr,
    T, H, stride_gb, stride_gt, stride_h0b, stride_glb,
    ACT: tl.constexpr, REVERSE: tl.constexpr, HAS_LEN: tl.constexpr,
    HAS_GY: tl.constexpr, HAS_GLAST: tl.constexpr,
    BLOCK: tl.constexpr, CHUNK: tl.constexpr,
):  # fmt: skip
    b = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < H
    rows = tl.arange(0, CHUNK)
    u = tl.load(u_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    h0 = tl.load(h0_ptr + b * stride_h0b + offs, mask=mask, other=0.0).to(tl.float32)
    n = T
    if HAS_LEN:
        n = tl.load(len_ptr + b).to(tl.int32)
    # carry = dL/dh of the step processed next (walking backwards): starts as the final-state gradient
    carry = tl.full([BLOCK], 0.0, tl.float32)
    if HAS_GLAST:
        carry = tl.load(glast_ptr + b * stride_glb + offs, mask=mask, other=0.0).to(tl.float32)
    h_row = h_ptr + b * T * H + offs[None, :]
    ga_row = ga_ptr + b * T * H + offs[None, :]
    gy_row = gy_ptr + b * stride_gb + offs[None, :]
    g_u = tl.full([BLOCK], 0.0, tl.float32)
    for c in range(0, n, CHUNK):
        k = n - 1 - c - rows  # indices in processing order, descending
        t = k
        t_prev = k - 1
        if REVERSE:
            t = n - 1 - k
            t_prev = t + 1
        io_mask = (k >= 0)[:, None] & mask[None, :]
        h_tile = tl.load(h_row + t[:, None] * H, mask=io_mask, other=0.0).to(tl.float32)
        hp_mask = (k > 0)[:, None] & mask[None, :]
        hp_tile = tl.load(h_row + t_prev[:, None] * H, mask=hp_mask, other=0.0).to(tl.float32)
        if HAS_GY:
            gy_tile = tl.load(gy_row + t[:, None] * stride_gt, mask=io_mask, other=0.0).to(tl.float32)
        ga_tile = tl.full([CHUNK, BLOCK], 0.0, tl.float32)
        for i in tl.static_range(CHUNK):
            k_i = n - 1 - c - i
            g_h = carry
            if HAS_GY:
                g_h += _row(gy_tile, rows, i)
            g_z = g_h * _act_grad(_row(h_tile, rows, i), ACT)
            g_z = tl.where(k_i >= 0, g_z, 0.0)
            h_prev = tl.where(k_i > 0, _row(hp_tile, rows, i), h0)
            g_u += g_z * h_prev
            carry = tl.where(k_i >= 0, u * g_z, carry)
            ga_tile = tl.where(rows[:, None] == i, g_z[None, :], ga_tile)
        tl.store(ga_row + t[:, None] * H, ga_tile.to(ga_ptr.dtype.element_ty), mask=io_mask)
    if HAS_LEN:
        zero = tl.full([CHUNK, BLOCK], 0.0, tl.float32).to(ga_ptr.dtype.element_ty)
        for c in range(n, T, CHUNK):
            t = c + rows
            tl.store(ga_row + t[:, None] * H, zero, mask=(t < T)[:, None] & mask[None, :])
    tl.store(gh0_ptr + b * H + offs, carry, mask=mask)
    tl.store(gu_ptr + b * H + offs, g_u, mask=mask)


CHUNK = 16


def launch_config(batch: int, hidden: int, sm_count: int = 132) -> tuple[int, int]:
    """(BLOCK, num_warps): one hidden unit per thread, as many warps per program as keeps >= 2
    programs per SM. Chosen without a GPU to tune on: the walk over time is latency-bound, so
    more programs (and the CHUNK-step tiles) are what keep memory busy.
    """
    for warps in (4, 2):
        block = 32 * warps
        if batch * triton.cdiv(hidden, block) >= 2 * sm_count:
            return block, warps
    return 32, 1


def _sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 132


class _FusedRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, storage: Tensor, u: Tensor, h0: Tensor, lengths: Tensor | None, activation: str, reverse, shape, inplace
    ):
        a = storage.view(shape)  # storage: a (B, T, H) in any contiguous shape, see the CPU Function
        batch, steps, hidden = a.shape
        if inplace:
            # each program loads a chunk of its own rows of a before storing h there
            ctx.mark_dirty(storage)
            h = a
        else:
            if a.stride(2) != 1:
                a = a.contiguous()
            h = torch.empty(batch, steps, hidden, dtype=a.dtype, device=a.device)
        u = u.contiguous()
        h0 = h0 if h0.stride(1) == 1 else h0.contiguous()
        last = torch.empty(batch, hidden, dtype=a.dtype, device=a.device)
        lens = lengths.to(device=a.device, dtype=torch.int32).contiguous() if lengths is not None else h
        block, warps = launch_config(batch, hidden, _sm_count(a.device))
        grid = (batch, triton.cdiv(hidden, block))
        _recurrence_fwd[grid](
            a, u, h0, lens, h, last, steps, hidden, a.stride(0), a.stride(1), h0.stride(0),
            ACT=ACT_CODES[activation], REVERSE=reverse, HAS_LEN=lengths is not None,
            BLOCK=block, CHUNK=CHUNK, num_warps=warps,
        )  # fmt: skip
        ctx.activation, ctx.reverse, ctx.shape = activation, reverse, shape
        result = storage if inplace else h
        ctx.save_for_backward(
            result, u, h0, lengths.to(device=a.device, dtype=torch.int32) if lengths is not None else None
        )
        return result, last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out: Tensor | None, g_last: Tensor | None):
        h, u, h0, lens = ctx.saved_tensors
        storage_shape, h = h.shape, h.view(ctx.shape)
        g_out = None if g_out is None else g_out.reshape(ctx.shape)
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
        block, warps = launch_config(batch, hidden, _sm_count(h.device))
        grid = (batch, triton.cdiv(hidden, block))
        _recurrence_bwd[grid](
            gy, gl, h, u, h0, lens if lens is not None else h, grad_a, grad_h0, grad_u,
            steps, hidden, gy.stride(0), gy.stride(1), h0.stride(0), gl.stride(0),
            ACT=ACT_CODES[ctx.activation], REVERSE=ctx.reverse, HAS_LEN=lens is not None,
            HAS_GY=g_out is not None, HAS_GLAST=g_last is not None,
            BLOCK=block, CHUNK=CHUNK, num_warps=warps,
        )  # fmt: skip
        return grad_a.view(storage_shape), grad_u.sum(0).to(u.dtype), grad_h0.to(h0.dtype), None, None, None, None, None


def elementwise_recurrence_triton(
    a: Tensor,
    u: Tensor,
    h0: Tensor,
    activation: str = "relu",
    lengths: Tensor | None = None,
    reverse: bool = False,
    inplace: bool = False,
) -> tuple[Tensor, Tensor]:
    """Fused recurrence. a: (B, T, H), u: (H,), h0: (B, H), lengths: (B,) or None.

    Returns (h (B, T, H), last (B, H)) in a's dtype, float32 accumulation inside. ``inplace``
    (a contiguous): h is written over a.
    """
    storage = writable_storage(a) if inplace else None
    if storage is None:
        return _FusedRecurrence.apply(a, u, h0, lengths, activation, reverse, a.shape, False)
    h, last = _FusedRecurrence.apply(storage, u, h0, lengths, activation, reverse, a.shape, True)
    return h.view(a.shape), last
