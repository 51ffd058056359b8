"""Plain-PyTorch forms of the elementwise recurrence h_t = act(a_t + u * h_{t-1}), used off the GPU.

``elementwise_recurrence_cpu`` is the fast one: an autograd Function whose backward is a
hand-written reverse loop, so autograd records one node instead of 2T. Both loops walk
``unbind`` slices of the batch-first tensors (never ``a[:, t]``, whose backward is quadratic in T)
and write into preallocated outputs, because on CPU the cost is dominated by per-op overhead and
by first-touch page faults of fresh large buffers, not by arithmetic.
Measured alternatives (T=1000, B=32, H=512, 2 shared cores) that lost: a time-major copy (the
transposes cost more than the contiguous slices save), precomputing the activation derivative
or the grad-of-u product for all steps at once (each extra full-size buffer costs ~50 ms of page
faults, more than the per-step ops it saves).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from .cpp_kernel import compiled_loops
from .reference import ACTIVATIONS, check_activation


def elementwise_recurrence_loop(a: Tensor, u: Tensor, h0: Tensor, activation: str = "relu") -> Tensor:
    """h_t = act(a_t + u * h_{t-1}); a: (B, T, H), u: (H,), h0: (B, H) -> (B, T, H).

    The straightforward autograd loop (2 graph nodes per step); kept as the baseline the
    benchmark compares against.
    """
    check_activation(activation)
    act = ACTIVATIONS[activation]
    h = h0.to(torch.promote_types(a.dtype, u.dtype))
    out = []
    for a_t in a.unbind(1):
        h = act(torch.addcmul(a_t, u, h))
        out.append(h)
    return torch.stack(out, dim=1)


# Below this many elements per step, the loops run their ops on one thread. ATen splits a
# transcendental op (tanh) over threads from ~10k elements on; a thousand tiny parallel regions
# per sequence then cost more than they save, and on a loaded machine each one waits for a
# descheduled thread: tanh over (32, 512) slices measured 10x slower with 2 threads than with 1.
SERIAL_BELOW = 1 << 16


@contextlib.contextmanager
def _serial_loop(elements_per_step: int) -> Iterator[None]:
    threads = torch.get_num_threads()
    if elements_per_step >= SERIAL_BELOW or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def writable_storage(a: Tensor) -> Tensor | None:
    """A tensor that may be overwritten in place and holds exactly ``a``'s elements in ``a``'s order:
    ``a`` itself, or the root of a reshape (as nn.Linear returns for 3-d input); None if neither.
    """
    if not a.is_contiguous():
        return None
    root = a if a._base is None else a._base
    if not root.is_contiguous() or root.numel() != a.numel() or root.data_ptr() != a.data_ptr():
        return None
    if root.is_leaf and root.requires_grad:
        return None
    return root


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype for a storage dtype: float32 for 16-bit floats, else the dtype itself."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _ends_by_step(lengths: Tensor) -> dict[int, Tensor]:
    """{t: rows whose last valid step is t} for lengths (B,)."""
    ends: dict[int, list[int]] = {}
    for b, n in enumerate(lengths.tolist()):
        if n > 0:
            ends.setdefault(n - 1, []).append(b)
    return {t: torch.tensor(rows, dtype=torch.long, device=lengths.device) for t, rows in ends.items()}


def _forward_loop(a, uc, h, out_steps, state, pre, valid, activation: str, n_min: int, n_max: int, low: bool):
    """h_t = act(a_t + u * h_{t-1}) into ``out_steps`` (or ``state`` then rounded, for 16-bit); returns h_last."""
    for t, a_t in enumerate(a.unbind(1)[:n_max]):
        dst = state if low else out_steps[t]
        if activation == "tanh":
            torch.addcmul(a_t, uc, h, out=pre)
            torch.tanh(pre, out=dst)
        else:
            torch.addcmul(a_t, uc, h, out=dst)
            if activation == "relu":
                dst.relu_()
        if t >= n_min:
            # rows already past their length output zero (their state no longer matters)
            dst.mul_(valid[:, t, None])
        if low:
            out_steps[t].copy_(dst)
        h = dst
    return h


class _Recurrence(torch.autograd.Function):
    """Forward direction; lengths optional. Returns (h (B, T, H) in a's dtype, last (B, H))."""

    @staticmethod
    def forward(ctx, storage: Tensor, u: Tensor, h0: Tensor, lengths: Tensor | None, activation: str, shape, inplace):
        # storage holds a (B, T, H) contiguously in any shape (in place it may be the root of a
        # reshape: autograd lets a Function that returns two tensors modify only a non-view)
        a = storage.view(shape)
        batch, steps, hidden = a.shape
        dev, cd = a.device, compute_dtype(a.dtype)
        low = cd != a.dtype
        uc = u.to(cd)
        n_max = steps if lengths is None else int(lengths.max())
        n_min = steps if lengths is None else int(lengths.min())
        valid = None if lengths is None else lengths[:, None] > torch.arange(steps, device=dev)[None, :]
        if inplace:
            # h overwrites a step by step (a_t is read before h_t is written): no fresh buffer
            # to page in, and the lines just read are the ones written
            ctx.mark_dirty(storage)
            out = a
        else:
            out = torch.empty_like(a, memory_format=torch.contiguous_format)
        ctx.loops = compiled_loops(a)  # the C++ loops of cpp_kernel.py (float32/float64, once built)
        if ctx.loops is not None:
            last = ctx.loops.forward(a, u, h0, lengths, activation, out)
            ctx.activation, ctx.shape = activation, shape
            result = storage if inplace else out
            ctx.save_for_backward(result, u, h0, lengths)
            return result, last
        # 16-bit storage: the state lives in a float32 buffer, each step is rounded into `out`
        state = torch.empty(batch, hidden, dtype=cd, device=dev) if low else None
        pre = torch.empty(batch, hidden, dtype=cd, device=dev) if activation == "tanh" else None
        h = h0.to(cd)
        out_steps = out.unbind(1)
        with _serial_loop(batch * hidden):
            h = _forward_loop(a, uc, h, out_steps, state, pre, valid, activation, n_min, n_max, low)
        if n_max < steps:
            out[:, n_max:].zero_()
        if lengths is None:
            last = h.to(a.dtype, copy=True)
        else:
            last = out[torch.arange(batch, device=dev), (lengths - 1).clamp(min=0)]
            last = torch.where((lengths > 0)[:, None], last, h0.to(a.dtype))
        ctx.activation, ctx.n_min, ctx.n_max, ctx.shape = activation, n_min, n_max, shape
        result = storage if inplace else out
        ctx.save_for_backward(result, u, h0, lengths)
        return result, last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out: Tensor | None, g_last: Tensor | None):
        out, u, h0, lengths = ctx.saved_tensors
        storage_shape, out = out.shape, out.view(ctx.shape)
        g_out = None if g_out is None else g_out.reshape(ctx.shape)
        if ctx.loops is not None:
            grad_a, grad_u, grad_h0 = ctx.loops.backward(g_out, g_last, out, u, h0, lengths, ctx.activation)
            return grad_a.view(storage_shape), grad_u.to(u.dtype), grad_h0.to(h0.dtype), None, None, None, None
        activation, n_min, n_max = ctx.activation, ctx.n_min, ctx.n_max
        batch, steps, hidden = out.shape
        dev, cd = out.device, compute_dtype(out.dtype)
        low = cd != out.dtype
        uc = u.to(cd)
        grad_a = torch.empty_like(out)
        if n_max < steps:
            grad_a[:, n_max:].zero_()
        g_steps = g_out.unbind(1) if g_out is not None else None
        h_steps = out.unbind(1)
        ga_steps = grad_a.unbind(1)
        valid = None if lengths is None else lengths[:, None] > torch.arange(steps, device=dev)[None, :]
        ends: dict = {}
        if g_last is not None:
            ends = {steps - 1: None} if lengths is None else _ends_by_step(lengths)
            g_last = g_last.to(cd)
        nxt = torch.zeros(batch, hidden, dtype=cd, device=dev)  # dL/dz_{t+1}
        g_u = torch.zeros(batch, hidden, dtype=cd, device=dev)  # per row: sum_t dL/dz_t * h_{t-1}
        # 16-bit storage: alternate between two float32 buffers (z must not alias nxt)
        pair = [torch.empty(batch, hidden, dtype=cd, device=dev) for _ in range(2)] if low else None
        with _serial_loop(batch * hidden):
            for t in range(n_max - 1, -1, -1):
                z = pair[t % 2] if low else ga_steps[t]
                # dL/dh_t = g_out_t + u * dL/dz_{t+1}
                if g_steps is not None:
                    torch.addcmul(g_steps[t], uc, nxt, out=z)
                else:
                    torch.mul(uc, nxt, out=z)
                if t in ends:
                    rows = ends[t]
                    if rows is None:
                        z.add_(g_last)
                    else:
                        z.index_add_(0, rows, g_last.index_select(0, rows))
                if t >= n_min:
                    z.mul_(valid[:, t, None])
                # dL/dz_t = dL/dh_t * act'(z_t), with act' read from h_t; one fused aten op each
                # (a bool-mask multiply measured 1.6x slower for relu)
                if activation == "relu":
                    torch.ops.aten.threshold_backward.grad_input(z, h_steps[t], 0, grad_input=z)
                elif activation == "tanh":
                    torch.ops.aten.tanh_backward.grad_input(z, h_steps[t], grad_input=z)
                if t > 0:
                    g_u.addcmul_(z, h_steps[t - 1])
                if low:
                    ga_steps[t].copy_(z)
                nxt = z
        if n_max > 0:
            g_u.addcmul_(nxt, h0.to(cd))
        grad_h0 = uc * nxt
        if g_last is not None and lengths is not None and bool((lengths == 0).any()):
            grad_h0 = torch.where((lengths == 0)[:, None], g_last, grad_h0)
        return grad_a.view(storage_shape), g_u.sum(0).to(u.dtype), grad_h0.to(h0.dtype), None, None, None, None


def elementwise_recurrence_cpu(
    a: Tensor,
    u: Tensor,
    h0: Tensor,
    activation: str = "relu",
    lengths: Tensor | None = None,
    inplace: bool = False,
) -> tuple[Tensor, Tensor]:
    """Forward-direction recurrence with a hand-written backward.

    a: (B, T, H), u: (H,), h0: (B, H), lengths: (B,) or None -> (h (B, T, H), last (B, H)),
    both in a's dtype; 16-bit inputs accumulate in float32. ``inplace``: h is written over a.
    """
    storage = writable_storage(a) if inplace else None
    if storage is None:
        return _Recurrence.apply(a, u, h0, lengths, activation, a.shape, False)
    h, last = _Recurrence.apply(storage, u, h0, lengths, activation, a.shape, True)
    return h.view(a.shape), last
