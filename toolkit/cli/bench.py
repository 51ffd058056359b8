"""``recur bench``: time IndRNN (fused recurrence) against the cuDNN/ATen baselines; write JSON + markdown."""

from __future__ import annotations

import argparse

from toolkit.errors import UserError

COMMAND = "bench"
HELP = "benchmark one recurrent layer's forward+backward: indrnn (fused, loop), irnn, lstm, gru"

DTYPES = ("float32", "bfloat16", "float16")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default=None, help="where to run (default: cuda if available, else cpu)"
    )
    parser.add_argument("--out", default="bench", help="folder for bench_<device>.json and .md (default ./bench)")
    parser.add_argument(
        "--quick", action="store_true", help="one tiny size, 1 warm-up, 2 runs: checks the pipeline, not speed"
    )
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="storage dtype (default float32)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per case (default 2)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per case, at most (default 10)")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds of timing per case after which 3 runs suffice (default 60)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from toolkit.bench import cpu_grid, gpu_grid, quick_grid, run_bench, write_results

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is visible; use --device cpu")
    if args.warmup < 0 or args.repeats < 1 or args.budget <= 0:
        raise UserError("need --warmup >= 0, --repeats >= 1 and --budget > 0")
    if args.dtype != "float32" and device == "cpu":
        raise UserError("16-bit dtypes are for --device cuda; on cpu use --dtype float32")
    if args.quick:
        grid, warmup, repeats = quick_grid(), 1, 2
    else:
        grid, warmup, repeats = (gpu_grid() if device == "cuda" else cpu_grid()), args.warmup, args.repeats
    result = run_bench(
        device,
        grid,
        dtype=getattr(torch, args.dtype),
        warmup=warmup,
        repeats=repeats,
        budget_s=args.budget,
        progress=not args.no_progress,
    )
    json_path, md_path = write_results(result, args.out)
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path}")
    if result["skipped"]:
        print(f"{result['skipped']} case(s) failed and were skipped")
    return 0
