"""Compiled CPU loops for the elementwise recurrence h_t = act(a_t + u * h_{t-1}), forward and backward.

The PyTorch loop of ``cpu._Recurrence`` makes 3 to 5 ATen calls per step, each a dispatch and a pass over
a (B, H) slice. These C++ loops walk each sequence in one pass (over ``a`` forward; over ``h``, ``dL/dh``
and ``dL/da`` backward), rows of the batch in parallel (``at::parallel_for``), branch-free inner loops that
vectorise (cloned for AVX-512, AVX2 and the x86-64 baseline, picked at load time). ``cpu._Recurrence``
calls them for float32 and float64 tensors when they are available (same autograd node, same contract);
16-bit tensors, and every tensor when they are not, take the PyTorch loop.

While they run they flush denormal floats to zero (x86 FTZ/DAZ, restored after): a gradient walked back
over hundreds of steps with |u| < 1 decays below 1e-38, and denormal arithmetic costs x86 cores tens of
times more, here and in every matmul the gradient reaches next (the adding problem at T = 1000 spent
three quarters of its step in the projection's backward because of them; ``recur bench --case
profile_step``). Values that small are zero to any weight update.

Built on first use with ``torch.utils.cpp_extension.load_inline`` (cached under ``$TORCH_EXTENSIONS_DIR``,
by default ``~/.cache/torch_extensions``; about a minute, once). ``cpp_available()`` is False, and the
PyTorch loop is used, when there is no C++ compiler or ninja, the build fails, or ``RECUR_CPU_KERNEL=python``
is set; ``use_compiled(False)`` switches them off inside a block (benchmarks, tests).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Iterator

import torch
from torch import Tensor

ACT_CODES = {"identity": 0, "relu": 1, "tanh": 2}
EXTENSION = "recur_recurrence_cpu_v3"  # bump with any change to _SOURCE

_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#if defined(__x86_64__) || defined(__SSE__)
#include <xmmintrin.h>
#endif

// Every inner loop runs over the H units of one step, branch-free (a mask multiply, not a select), so
// it vectorises; on x86-64 Linux each entry point is cloned for AVX-512, AVX2 and the baseline and the
// CPU's best is picked at load time (one build serves every x86 machine sharing the cache).
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define RECUR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RECUR_CLONES
#endif
#define RECUR_INLINE inline __attribute__((always_inline))

namespace {

// flush denormals to zero (FTZ) and read them as zero (DAZ) on this thread while in scope
struct FlushDenormals {
#if defined(__x86_64__) || defined(__SSE__)
  unsigned int saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040); }
  ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

// act'(z) written in terms of h = act(z): 0 identity, 1 relu, 2 tanh
template <typename T, int ACT>
RECUR_INLINE T act_grad(T h) {
  if (ACT == 1) return static_cast<T>(h > T(0));
  if (ACT == 2) return T(1) - h * h;
  return T(1);
}

template <typename T, int ACT>
RECUR_INLINE void forward_rows(const T* a, const T* __restrict u, const T* __restrict h0, const int64_t* len,
                               T* out, T* __restrict last, T* __restrict h, int64_t S, int64_t H,
                               int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t n = len ? len[b] : S;
    std::memcpy(h, h0 + b * H, H * sizeof(T));
    for (int64_t t = 0; t < n; ++t) {
      // `out` may be `a` (in place): each element is read before it is written
      const T* ar = a + (b * S + t) * H;
      T* o = out + (b * S + t) * H;
      for (int64_t j = 0; j < H; ++j) {
        T z = ar[j] + u[j] * h[j];
        if (ACT == 1) z = std::max(z, T(0));
        if (ACT == 2) z = std::tanh(z);
        h[j] = z;
        o[j] = z;
      }
    }
    for (int64_t t = n; t < S; ++t) std::memset(out + (b * S + t) * H, 0, H * sizeof(T));
    std::memcpy(last + b * H, h, H * sizeof(T));
  }
}

template <typename T, int ACT, bool HAS_GY>
RECUR_INLINE void backward_rows(const T* __restrict gy, const T* __restrict gl, const T* __restrict hs,
                                const T* __restrict u, const T* __restrict h0, const int64_t* len,
                                T* __restrict ga, T* __restrict gh0, T* __restrict gu_part, T* __restrict carry,
                                int64_t S, int64_t H, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t n = len ? len[b] : S;
    T* __restrict gu = gu_part + b * H;
    // carry = dL/dh of the step processed next (walking backwards), from the final state's gradient
    for (int64_t j = 0; j < H; ++j) {
      carry[j] = gl ? gl[b * H + j] : T(0);
      gu[j] = T(0);
    }
    for (int64_t t = n - 1; t >= 0; --t) {
      const int64_t row = (b * S + t) * H;
      const T* __restrict hr = hs + row;
      const T* __restrict hp = t > 0 ? hs + row - H : h0 + b * H;
      const T* __restrict g = gy + (HAS_GY ? row : 0);
      T* __restrict gar = ga + row;
      for (int64_t j = 0; j < H; ++j) {
        const T gz = (HAS_GY ? carry[j] + g[j] : carry[j]) * act_grad<T, ACT>(hr[j]);
        gar[j] = gz;
        gu[j] += gz * hp[j];
        carry[j] = u[j] * gz;
      }
    }
    for (int64_t t = n; t < S; ++t) std::memset(ga + (b * S + t) * H, 0, H * sizeof(T));
    std::memcpy(gh0 + b * H, carry, H * sizeof(T));
  }
}

#define RECUR_FORWARD(T, NAME)                                                                           \
  RECUR_CLONES void NAME(const T* a, const T* u, const T* h0, const int64_t* len, T* out, T* last, T* h,  \
                         int64_t S, int64_t H, int64_t b0, int64_t b1, int64_t code) {                    \
    if (code == 1) forward_rows<T, 1>(a, u, h0, len, out, last, h, S, H, b0, b1);                        \
    else if (code == 2) forward_rows<T, 2>(a, u, h0, len, out, last, h, S, H, b0, b1);                   \
    else forward_rows<T, 0>(a, u, h0, len, out, last, h, S, H, b0, b1);                                  \
  }

#define RECUR_BACKWARD_ACT(T, ACT)                                                                       \
  if (gy) backward_rows<T, ACT, true>(gy, gl, hs, u, h0, len, ga, gh0, gu, carry, S, H, b0, b1);         \
  else backward_rows<T, ACT, false>(gy, gl, hs, u, h0, len, ga, gh0, gu, carry, S, H, b0, b1);

#define RECUR_BACKWARD(T, NAME)                                                                          \
  RECUR_CLONES void NAME(const T* gy, const T* gl, const T* hs, const T* u, const T* h0, const int64_t* len, \
                         T* ga, T* gh0, T* gu, T* carry, int64_t S, int64_t H, int64_t b0, int64_t b1,     \
                         int64_t code) {                                                                  \
    if (code == 1) { RECUR_BACKWARD_ACT(T, 1) }                                                          \
    else if (code == 2) { RECUR_BACKWARD_ACT(T, 2) }                                                     \
    else { RECUR_BACKWARD_ACT(T, 0) }                                                                    \
  }

RECUR_FORWARD(float, forward_f32)
RECUR_FORWARD(double, forward_f64)
RECUR_BACKWARD(float, backward_f32)
RECUR_BACKWARD(double, backward_f64)

inline void forward_dispatch(const float* a, const float* u, const float* h0, const int64_t* len, float* out,
                             float* last, float* h, int64_t S, int64_t H, int64_t b0, int64_t b1, int64_t code) {
  forward_f32(a, u, h0, len, out, last, h, S, H, b0, b1, code);
}
inline void forward_dispatch(const double* a, const double* u, const double* h0, const int64_t* len, double* out,
                             double* last, double* h, int64_t S, int64_t H, int64_t b0, int64_t b1, int64_t code) {
  forward_f64(a, u, h0, len, out, last, h, S, H, b0, b1, code);
}
inline void backward_dispatch(const float* gy, const float* gl, const float* hs, const float* u, const float* h0,
                              const int64_t* len, float* ga, float* gh0, float* gu, float* carry, int64_t S,
                              int64_t H, int64_t b0, int64_t b1, int64_t code) {
  backward_f32(gy, gl, hs, u, h0, len, ga, gh0, gu, carry, S, H, b0, b1, code);
}
inline void backward_dispatch(const double* gy, const double* gl, const double* hs, const double* u,
                              const double* h0, const int64_t* len, double* ga, double* gh0, double* gu,
                              double* carry, int64_t S, int64_t H, int64_t b0, int64_t b1, int64_t code) {
  backward_f64(gy, gl, hs, u, h0, len, ga, gh0, gu, carry, S, H, b0, b1, code);
}

void check(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), name, " must be a contiguous CPU tensor");
}

}  // namespace

at::Tensor recurrence_forward(at::Tensor a, at::Tensor u, at::Tensor h0, c10::optional<at::Tensor> lengths,
                              int64_t code, at::Tensor out) {
  check(a, "a"); check(u, "u"); check(h0, "h0"); check(out, "out");
  const int64_t B = a.size(0), S = a.size(1), H = a.size(2);
  auto last = at::empty({B, H}, a.options());
  const int64_t* len = nullptr;
  at::Tensor lens;
  if (lengths.has_value()) { lens = lengths->to(at::kLong).contiguous(); len = lens.data_ptr<int64_t>(); }
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "recurrence_forward", [&] {
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* pu = u.data_ptr<scalar_t>();
    const scalar_t* ph0 = h0.data_ptr<scalar_t>();
    scalar_t* po = out.data_ptr<scalar_t>();
    scalar_t* pl = last.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      FlushDenormals ftz;
      std::vector<scalar_t> h(H);
      forward_dispatch(pa, pu, ph0, len, po, pl, h.data(), S, H, b0, b1, code);
    });
  });
  return last;
}

std::vector<at::Tensor> recurrence_backward(c10::optional<at::Tensor> g_out, c10::optional<at::Tensor> g_last,
                                            at::Tensor h, at::Tensor u, at::Tensor h0,
                                            c10::optional<at::Tensor> lengths, int64_t code) {
  check(h, "h"); check(u, "u"); check(h0, "h0");
  const int64_t B = h.size(0), S = h.size(1), H = h.size(2);
  auto grad_a = at::empty_like(h);
  auto grad_h0 = at::empty({B, H}, h.options());
  auto gu_part = at::empty({B, H}, h.options());
  const int64_t* len = nullptr;
  at::Tensor lens, gy, gl;
  if (lengths.has_value()) { lens = lengths->to(at::kLong).contiguous(); len = lens.data_ptr<int64_t>(); }
  if (g_out.has_value()) { gy = g_out->contiguous(); }
  if (g_last.has_value()) { gl = g_last->contiguous(); }
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "recurrence_backward", [&] {
    const scalar_t* pgy = gy.defined() ? gy.data_ptr<scalar_t>() : nullptr;
    const scalar_t* pgl = gl.defined() ? gl.data_ptr<scalar_t>() : nullptr;
    const scalar_t* ph = h.data_ptr<scalar_t>();
    const scalar_t* pu = u.data_ptr<scalar_t>();
    const scalar_t* ph0 = h0.data_ptr<scalar_t>();
    scalar_t* pga = grad_a.data_ptr<scalar_t>();
    scalar_t* pgh0 = grad_h0.data_ptr<scalar_t>();
    scalar_t* pgu = gu_part.data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      FlushDenormals ftz;
      std::vector<scalar_t> carry(H);
      backward_dispatch(pgy, pgl, ph, pu, ph0, len, pga, pgh0, pgu, carry.data(), S, H, b0, b1, code);
    });
  });
  return {grad_a, gu_part.sum(0), grad_h0};
}
"""


@functools.cache
def _module():
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its import warns that a CPU-only machine has no CUDA runtime
    try:
        from torch.utils import cpp_extension
    finally:
        logger.setLevel(level)
    build_dir = getattr(cpp_extension, "_get_build_directory", None)
    if build_dir is not None and not os.path.exists(os.path.join(build_dir(EXTENSION, False), f"{EXTENSION}.so")):
        _say("recur: building the compiled CPU recurrence (once, about a minute)")
    return cpp_extension.load_inline(
        name=EXTENSION,
        cpp_sources=_SOURCE,
        functions=["recurrence_forward", "recurrence_backward"],
        extra_cflags=["-O3"],
        verbose=False,
    )


@functools.cache
def cpp_available() -> bool:
    """True when the compiled loops are built (or build now) and load; never raises."""
    if os.environ.get("RECUR_CPU_KERNEL", "").lower() == "python":
        return False
    try:
        _module()
    except Exception as err:  # no compiler, no ninja, a failed build: the PyTorch loop serves
        global unavailable_reason
        unavailable_reason = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
        _say(f"recur: compiled CPU recurrence unavailable ({unavailable_reason}); using the PyTorch loop")
        return False
    return True


unavailable_reason: str | None = None  # why cpp_available() said False after trying


def _say(message: str) -> None:
    """A one-time note for a person at a terminal (logged otherwise, so no command's output changes)."""
    if sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)
    else:
        logging.getLogger(__name__).info(message)


_enabled = True


@contextlib.contextmanager
def use_compiled(enabled: bool) -> Iterator[None]:
    """Inside the block the CPU recurrence does (True) or does not (False) use the compiled loops."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


class CompiledLoops:
    """The two entry points, with the argument conventions of ``cpu._Recurrence``."""

    def __init__(self, module) -> None:
        self._m = module

    def forward(self, a: Tensor, u: Tensor, h0: Tensor, lengths: Tensor | None, activation: str, out: Tensor):
        """Writes h into ``out`` (B, T, H; may be ``a`` itself); returns the final state (B, H)."""
        return self._m.recurrence_forward(
            a.contiguous(), u.to(a.dtype).contiguous(), h0.to(a.dtype).contiguous(), lengths,
            ACT_CODES[activation], out,
        )  # fmt: skip

    def backward(self, g_out, g_last, h: Tensor, u: Tensor, h0: Tensor, lengths: Tensor | None, activation: str):
        """(dL/da (B, T, H), dL/du (H,), dL/dh0 (B, H)) in h's dtype, from dL/dh and dL/d(final state)."""
        return self._m.recurrence_backward(
            None if g_out is None else g_out.to(h.dtype),
            None if g_last is None else g_last.to(h.dtype),
            h, u.to(h.dtype).contiguous(), h0.to(h.dtype).contiguous(), lengths, ACT_CODES[activation],
        )  # fmt: skip


def compiled_loops(a: Tensor) -> CompiledLoops | None:
    """The compiled loops for a CPU float32/float64 ``a`` when they are on and available, else None."""
    if not (_enabled and a.device.type == "cpu" and a.dtype in (torch.float32, torch.float64)):
        return None
    if not cpp_available():
        return None
    return CompiledLoops(_module())
