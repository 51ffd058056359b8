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


def interleaved_medians(
    fns: dict[str, Callable[[], object]],
    device: torch.device,
    warmup: int,
    repeats: int,
    budget_s: float = float("inf"),
    on_round: Callable[[str], None] | None = None,
) -> dict[str, dict | Exception]:
    """Time several functions round-robin: a burst of load from other processes on a shared machine
    then hits every function alike, so the ratios between them stay honest.

    Each gets ``warmup`` untimed runs, then up to ``repeats`` timed runs (after three, it stops
    once ``budget_s`` seconds were spent on it). Returns {name: {median_s, min_s, times_s}} or
    {name: the exception it raised}; ``on_round(name)`` is called before each run.
    """
    results: dict[str, dict | Exception] = {}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_index in range(warmup + repeats):
        for name, fn in fns.items():
            if name in results:
                continue
            done = times[name]
            if round_index >= warmup and len(done) >= 3 and sum(done) > budget_s:
                continue
            if on_round is not None:
                on_round(name)
            try:
                start = time.perf_counter()
                fn()
                synchronize(device)
            except RuntimeError as err:  # e.g. torch.OutOfMemoryError: that case is dropped
                results[name] = err
                continue
            if round_index >= warmup:
                done.append(time.perf_counter() - start)
    for name, done in times.items():
        if name not in results:
            results[name] = {"median_s": statistics.median(done), "min_s": min(done), "times_s": done}
    return results


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
