"""Kernels for the elementwise recurrence h_t = act(a_t + u * h_{t-1}).

``elementwise_recurrence`` picks the fastest implementation for the tensors given: the fused
Triton kernel on CUDA (when Triton imports), the hand-written-backward loop elsewhere.
The reference loop (``impl="reference"``) is for tests; ``impl="loop"`` is the plain autograd
loop, kept as the benchmark's baseline.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
from torch import Tensor

from ..base import length_mask, reverse_padded
from .cpu import compute_dtype, elementwise_recurrence_cpu, elementwise_recurrence_loop
from .reference import ACTIVATIONS, check_activation, elementwise_recurrence_reference

__all__ = [
    "ACTIVATIONS",
    "IMPLEMENTATIONS",
    "check_activation",
    "compute_dtype",
    "elementwise_recurrence",
    "elementwise_recurrence_cpu",
    "elementwise_recurrence_loop",
    "elementwise_recurrence_reference",
    "triton_available",
    "use_impl",
]

IMPLEMENTATIONS = ("auto", "triton", "cpu", "loop", "reference")
_default_impl = "auto"


@contextlib.contextmanager
def use_impl(impl: str) -> Iterator[None]:
    """Make ``impl`` the implementation every layer gets inside the block (benchmarks, debugging)."""
    global _default_impl
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"use_impl: impl must be one of {', '.join(IMPLEMENTATIONS)}, got {impl!r}")
    previous, _default_impl = _default_impl, impl
    try:
        yield
    finally:
        _default_impl = previous


@functools.cache
def triton_available() -> bool:
    """True when Triton imports (on CUDA machines it ships with torch)."""
    try:
        from . import triton_kernel  # noqa: F401
    except ImportError:  # no Triton: the CPU path runs; a bug in the kernel module must not hide behind this
        return False
    return True


def _check_shapes(a: Tensor, u: Tensor, h0: Tensor, lengths: Tensor | None) -> None:
    if a.dim() != 3:
        raise ValueError(f"elementwise_recurrence: a must be (batch, time, hidden), got {tuple(a.shape)}")
    batch, steps, hidden = a.shape
    if u.shape != (hidden,):
        raise ValueError(f"elementwise_recurrence: u must have shape ({hidden},), got {tuple(u.shape)}")
    if h0.shape != (batch, hidden):
        raise ValueError(f"elementwise_recurrence: h0 must have shape ({batch}, {hidden}), got {tuple(h0.shape)}")
    if lengths is not None:
        if lengths.shape != (batch,) or lengths.dtype.is_floating_point:
            raise ValueError(f"elementwise_recurrence: lengths must be ({batch},) integers")
        # the range check reads the values: a host sync, so only where it is free (CPU)
        if batch and not lengths.is_cuda and (int(lengths.min()) < 0 or int(lengths.max()) > steps):
            raise ValueError(f"elementwise_recurrence: lengths must lie in [0, {steps}]")


def _resolve(impl: str, a: Tensor) -> str:
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"elementwise_recurrence: impl must be one of {', '.join(IMPLEMENTATIONS)}, got {impl!r}")
    if impl == "auto":
        return "triton" if a.is_cuda and triton_available() else "cpu"
    return impl


def elementwise_recurrence(
    a: Tensor,
    u: Tensor,
    h0: Tensor,
    activation: str = "relu",
    *,
    lengths: Tensor | None = None,
    reverse: bool = False,
    return_last: bool = False,
    overwrite_a: bool = False,
    impl: str | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """h_t = act(a_t + u ⊙ h_{t-1}) for every step: a (B, T, H), u (H,), h0 (B, H) -> h (B, T, H).

    ``activation``: relu, tanh or identity. ``lengths`` (B,): sequence b is ``a[b, :lengths[b]]``;
    later steps output zero and do not touch the state. ``reverse``: each sequence is walked from
    its last valid step back to step 0 (the backward direction of a bidirectional layer).
    ``return_last``: also return the state after the last processed step, (B, H) (``h0[b]`` for
    an empty sequence), whose gradient flows back through the recurrence.
    ``overwrite_a``: the caller will not use ``a`` again, so h may be written over it (saves a
    buffer; ignored where it cannot apply: a non-contiguous a, or a leaf that requires grad).
    Outputs have a's dtype; 16-bit inputs accumulate in float32. Gradients reach a, u and h0.
    ``impl`` forces an implementation ("triton" also runs on CPU tensors under TRITON_INTERPRET=1);
    None means the one set by ``use_impl`` ("auto" unless changed).
    """
    check_activation(activation)
    _check_shapes(a, u, h0, lengths)
    if lengths is not None and not lengths.is_cuda and int(lengths.min()) == a.shape[1] and not reverse:
        lengths = None  # every sequence is full: skip the masking work
    impl = _resolve(_default_impl if impl is None else impl, a)
    inplace = overwrite_a
    if impl == "triton":
        from .triton_kernel import elementwise_recurrence_triton

        h, last = elementwise_recurrence_triton(a, u, h0, activation, lengths, reverse, inplace)
    elif impl == "reference":
        return elementwise_recurrence_reference(
            a, u, h0, activation, lengths=lengths, reverse=reverse, return_last=return_last
        )
    else:
        h, last = _forward_direction(a, u, h0, activation, lengths, reverse, impl, inplace)
    return (h, last) if return_last else h


def _forward_direction(
    a: Tensor,
    u: Tensor,
    h0: Tensor,
    activation: str,
    lengths: Tensor | None,
    reverse: bool,
    impl: str,
    inplace: bool,
) -> tuple[Tensor, Tensor]:
    """The plain-PyTorch paths walk forward only: a reversed sequence is reversed in place first."""
    if reverse:
        full = torch.full((a.shape[0],), a.shape[1], dtype=torch.long, device=a.device)
        lens = full if lengths is None else lengths.to(a.device)
        a = reverse_padded(a, lens)
        inplace = True  # the reversed copy is ours
    if impl == "cpu":
        h, last = elementwise_recurrence_cpu(a, u, h0, activation, lengths, inplace)
    else:
        h = elementwise_recurrence_loop(a, u, h0, activation).to(a.dtype)
        if lengths is None:
            last = h[:, -1]
        else:
            lens = lengths.to(a.device)
            last = h[torch.arange(a.shape[0], device=a.device), (lens - 1).clamp(min=0)]
            last = torch.where((lens > 0)[:, None], last, h0.to(h.dtype))
            h = h * length_mask(lens, a.shape[1]).unsqueeze(-1).to(h.dtype)
    if reverse:
        h = reverse_padded(h, lens)
    return h, last
