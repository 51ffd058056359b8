"""Wall-clock medians that mean something on GPU (synchronised) and on a shared CPU (warmed up)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(
    fn: Callable[[], object], device: torch.device, warmup: int, repeats: int, budget_s: float = float("inf")
) -> dict:
    """Run ``fn`` ``warmup`` times untimed, then up to ``repeats`` times timed; {median_s, min_s, times_s}.

    After three timed runs, stops early once ``budget_s`` seconds have been spent timing (a CPU
    LSTM step at T=1000 takes tens of seconds; three runs give a median).
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    for _ in range(repeats):
        if len(times) >= 3 and sum(times) > budget_s:
            break
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def peak_memory_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """Peak allocated memory of one call above what was allocated before it (CUDA only; None on CPU)."""
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def copy_bandwidth(device: torch.device, nbytes: int, warmup: int, repeats: int) -> float:
    """Bytes/s of a device-to-device tensor copy of ``nbytes`` (read + write counted)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    timing = median_seconds(lambda: dst.copy_(src), device, warmup, repeats)
    return 2 * src.numel() * 4 / timing["median_s"]
