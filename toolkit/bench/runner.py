"""The benchmark grid and the loop that times every (configuration, model) pair."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import asdict, dataclass

import torch

from toolkit.nn import kernels

from .cases import MODELS, make_case, recurrence_forward
from .timing import copy_bandwidth, median_seconds, peak_memory_bytes


@dataclass(frozen=True)
class Config:
    """One problem size: T steps, B sequences, H hidden units (input size = H)."""

    steps: int
    batch: int
    hidden: int


def gpu_grid() -> list[Config]:
    """T in {256, 1024, 4096} x B in {16, 64} x H in {512, 1024, 2048}, plus the issue's target size."""
    grid = [Config(t, b, h) for t in (256, 1024, 4096) for b in (16, 64) for h in (512, 1024, 2048)]
    return grid + [Config(1024, 32, 1024)]


def cpu_grid() -> list[Config]:
    return [Config(1000, 32, 512)]


def quick_grid() -> list[Config]:
    """A tiny size that runs end to end in seconds (for tests and smoke runs; timings meaningless)."""
    return [Config(16, 2, 8)]


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _meta(device: torch.device, dtype: torch.dtype, warmup: int, repeats: int) -> dict:
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    probe = torch.empty(1, device=device)
    return {
        "device": device.type,
        "device_name": _device_name(device),
        "dtype": str(dtype).removeprefix("torch."),
        "recurrence_impl": kernels._resolve("auto", probe),
        "torch": torch.__version__,
        "triton": triton_version,
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "warmup": warmup,
        "repeats": repeats,
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": list(os.getloadavg()),
    }


def _recurrence_bytes(cfg: Config, dtype: torch.dtype) -> tuple[int, int]:
    """Bytes the recurrence must move: forward reads a, writes h; backward reads dL/dh and h, writes dL/da."""
    n = cfg.steps * cfg.batch * cfg.hidden * torch.finfo(dtype).bits // 8
    return 2 * n, 3 * n


def run_bench(
    device: str | torch.device,
    grid: list[Config],
    models: tuple[str, ...] = tuple(MODELS),
    dtype: torch.dtype = torch.float32,
    warmup: int = 2,
    repeats: int = 10,
    budget_s: float = 60.0,
    progress: bool = True,
) -> dict:
    """Time forward+backward of each model at each size; return {meta, copy_bandwidth_Bps, rows, skipped}.

    A case that fails (e.g. out of memory) is recorded with its error and counted, not fatal.
    """
    from tqdm import tqdm

    device = torch.device(device)
    result = {"meta": _meta(device, dtype, warmup, repeats), "rows": [], "skipped": 0}
    biggest = max(c.steps * c.batch * c.hidden for c in grid) * 4
    result["copy_bandwidth_Bps"] = copy_bandwidth(device, min(biggest, 1 << 30), warmup, max(repeats, 3))
    bar = tqdm(total=len(grid) * len(models), desc="bench", unit="case", disable=not progress)
    for cfg in grid:
        rows = []
        for model in models:
            bar.set_postfix_str(f"{model} T={cfg.steps} B={cfg.batch} H={cfg.hidden}")
            row = {"model": model, **asdict(cfg)}
            try:
                row.update(_measure(model, cfg, device, dtype, warmup, repeats, budget_s))
            except (RuntimeError, ValueError) as err:  # torch.OutOfMemoryError is a RuntimeError
                row["error"] = str(err).splitlines()[0][:300]
                result["skipped"] += 1
            if device.type == "cuda":
                torch.cuda.empty_cache()
            rows.append(row)
            bar.update(1)
        lstm = next((r for r in rows if r["model"] == "lstm" and "median_s" in r), None)
        for r in rows:
            if lstm and "median_s" in r:
                r["speedup_vs_lstm"] = lstm["median_s"] / r["median_s"]
        result["rows"].extend(rows)
    bar.close()
    result["meta"]["load_average_end"] = list(os.getloadavg())
    return result


def _measure(
    model: str, cfg: Config, device: torch.device, dtype: torch.dtype, warmup: int, repeats: int, budget_s: float
) -> dict:
    case = make_case(model, cfg.steps, cfg.batch, cfg.hidden, device, dtype)
    timing = median_seconds(case, device, warmup, repeats, budget_s)
    row = {**timing, "peak_memory_bytes": peak_memory_bytes(case, device)}
    del case
    if model == "recurrence":
        fwd_bytes, bwd_bytes = _recurrence_bytes(cfg, dtype)
        forward = median_seconds(
            recurrence_forward(cfg.steps, cfg.batch, cfg.hidden, device, dtype), device, warmup, repeats, budget_s
        )
        row["forward_median_s"] = forward["median_s"]
        row["forward_Bps"] = fwd_bytes / forward["median_s"]
        row["fwd_bwd_Bps"] = (fwd_bytes + bwd_bytes) / timing["median_s"]
    return row
