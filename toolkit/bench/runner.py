"""The benchmark grid and the loop that times every (configuration, model) pair."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import asdict, dataclass

import torch

from toolkit.nn import kernels

from .cases import MODELS, make_case, make_inputs, recurrence_forward
from .ctc_step import CTC_MODELS, PREFIX, CTCConfig, build_task, describe, make_batch, make_step
from .timing import copy_bandwidth, interleaved_medians, peak_memory_bytes


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
    ctc_grid: list[CTCConfig] | tuple[CTCConfig, ...] = (),
) -> dict:
    """Time forward+backward of each model at each size; return {meta, copy_bandwidth_Bps, rows, skipped}.

    At each size the models run round-robin on the same input (see ``interleaved_medians``). A case
    that fails (e.g. out of memory) is recorded with its error and counted, not fatal. Each size of
    ``ctc_grid`` adds two rows (``ctc_step/res_indrnn``, ``ctc_step/lstm``): a whole CTC training step
    of equal-size models (see :mod:`toolkit.bench.ctc_step`), timed the same way.
    """
    from tqdm import tqdm

    device = torch.device(device)
    result = {"meta": _meta(device, dtype, warmup, repeats), "rows": [], "skipped": 0}
    biggest = max((c.steps * c.batch * c.hidden for c in grid), default=1 << 24) * 4
    result["copy_bandwidth_Bps"] = copy_bandwidth(device, min(biggest, 1 << 30), warmup, max(repeats, 3))
    total = (len(grid) + len(ctc_grid)) * (warmup + repeats)
    bar = tqdm(total=total, desc="bench", unit="round", disable=not progress)
    for cfg in grid:
        size = f"T={cfg.steps} B={cfg.batch} H={cfg.hidden}"
        rows = _measure_size(cfg, models, device, dtype, warmup, repeats, budget_s, bar, size)
        result["skipped"] += sum("error" in r for r in rows)
        lstm = next((r for r in rows if r["model"] == "lstm" and "median_s" in r), None)
        for r in rows:
            if lstm and "median_s" in r:
                r["speedup_vs_lstm"] = lstm["median_s"] / r["median_s"]
        result["rows"].extend(rows)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for ctc in ctc_grid:
        rows = _measure_ctc(ctc, device, dtype, warmup, repeats, budget_s, bar)
        result["skipped"] += sum("error" in r for r in rows)
        result["rows"].extend(rows)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    bar.close()
    result["meta"]["load_average_end"] = list(os.getloadavg())
    return result


def _round_counter(bar, size: str):
    """``on_round`` for ``interleaved_medians``: advances the progress bar once per round."""
    seen: set[str] = set()

    def on_round(name: str) -> None:
        if name in seen:  # a new round starts when the first function comes round again
            seen.clear()
            bar.update(1)
        seen.add(name)
        bar.set_postfix_str(f"{name} {size}")

    return on_round


def _measure_size(cfg, models, device, dtype, warmup, repeats, budget_s, bar, size) -> list[dict]:
    rows = {m: {"model": m, **asdict(cfg)} for m in models}
    try:
        x, grad = make_inputs(cfg.steps, cfg.batch, cfg.hidden, device, dtype)
    except RuntimeError as err:
        return [{**r, "error": _first_line(err)} for r in rows.values()]
    fns = {}
    for m in models:
        try:
            fns[m] = make_case(m, x, grad)
        except (RuntimeError, ValueError) as err:
            rows[m]["error"] = _first_line(err)
    if "recurrence" in fns:
        fns["recurrence_forward"] = recurrence_forward(x)
    bar_start = bar.n
    timings = interleaved_medians(fns, device, warmup, repeats, budget_s, _round_counter(bar, size))
    bar.update(bar_start + warmup + repeats - bar.n)  # rounds skipped by the budget count as done
    for m, fn in fns.items():
        if m == "recurrence_forward":
            continue
        timing = timings[m]
        if isinstance(timing, Exception):
            rows[m]["error"] = _first_line(timing)
            continue
        rows[m].update(timing, peak_memory_bytes=_peak(fn, device))
    forward = timings.get("recurrence_forward")
    if "median_s" in rows.get("recurrence", {}) and isinstance(forward, dict):
        fwd_bytes, bwd_bytes = _recurrence_bytes(cfg, dtype)
        rows["recurrence"]["forward_median_s"] = forward["median_s"]
        rows["recurrence"]["forward_Bps"] = fwd_bytes / forward["median_s"]
        rows["recurrence"]["fwd_bwd_Bps"] = (fwd_bytes + bwd_bytes) / rows["recurrence"]["median_s"]
    return list(rows.values())


def _measure_ctc(cfg: CTCConfig, device, dtype, warmup, repeats, budget_s, bar) -> list[dict]:
    """Rows of one CTC step size: res_indrnn and LSTM CTC models of equal size, timed round-robin.

    Each row holds the sizes, both parameter counts, the timing and ``speedup_vs_lstm`` (the LSTM's
    median / this model's median: on the res_indrnn row, the issue's lstm_time / res_indrnn_time).
    """
    size = f"ctc B={cfg.batch} T={cfg.frames} L={cfg.num_layers}"
    rows: dict[str, dict] = {}
    fns = {}
    for encoder in CTC_MODELS:
        name = PREFIX + encoder
        rows[name] = {"model": name, "case": "ctc_step", "steps": cfg.frames, "batch": cfg.batch, "hidden": None}
        try:
            task = build_task(encoder, cfg)
            rows[name] = describe(encoder, task, cfg)
            task = task.to(device)
            batch = make_batch(cfg, task.tokenizer.vocab_size, device)
            fns[name] = make_step(task, batch, dtype)
        except (RuntimeError, ValueError) as err:  # out of memory; no width within 2% of the budget
            rows[name]["error"] = _first_line(err)
    bar_start = bar.n
    timings = interleaved_medians(fns, device, warmup, repeats, budget_s, _round_counter(bar, size))
    bar.update(bar_start + warmup + repeats - bar.n)
    for name, fn in fns.items():
        timing = timings[name]
        if isinstance(timing, Exception):
            rows[name]["error"] = _first_line(timing)
            continue
        rows[name].update(timing, peak_memory_bytes=_peak(fn, device))
    lstm = rows.get(PREFIX + "lstm", {})
    for r in rows.values():
        if "median_s" in r and "median_s" in lstm:
            r["speedup_vs_lstm"] = lstm["median_s"] / r["median_s"]
    return list(rows.values())


def _peak(fn, device: torch.device) -> int | None:
    try:
        return peak_memory_bytes(fn, device)
    except RuntimeError:
        return None


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:300]
