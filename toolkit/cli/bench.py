"""``recur bench``: time IndRNN (fused recurrence) against the cuDNN/ATen baselines, one layer and a whole CTC
training step (res_indrnn vs an LSTM of equal size); write JSON + markdown."""

from __future__ import annotations

import argparse

from toolkit.errors import UserError

COMMAND = "bench"
HELP = (
    "benchmark one recurrent layer's forward+backward (indrnn fused and loop, irnn, lstm, gru) and a whole CTC "
    "training step (res_indrnn vs an LSTM with as many parameters)"
)

DTYPES = ("float32", "bfloat16", "float16")
CASES = ("all", "layer", "ctc_step", "streams", "deploy")

CASES += ("profile_step",)  # one thread, one training step of the adding / sequential-MNIST recipes, by part


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default=None, help="where to run (default: cuda if available, else cpu)"
    )
    parser.add_argument(
        "--out",
        default="bench",
        help="folder for bench_<device>.json and .md (bench_<device>_<case>.* with --case)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one tiny size, 1 warm-up, 2 runs: checks the pipeline, not speed"
    )
    parser.add_argument(
        "--case",
        choices=CASES,
        default="all",
        help="what to time: 'layer' (one layer, the size grid), 'ctc_step' (forward, CTC loss, backward and "
        "AdamW step of equal-size res_indrnn and LSTM acoustic models; cuda: B=32, T=1000 frames, 5 layers, 15M "
        "parameters; cpu: B=16, T=300, 4 layers, 1.5M), 'streams' (how many concurrent real-time streams, "
        "160 ms chunks, the CPU sustains with unidirectional res_indrnn and LSTM recognisers of 4 layers, 1.5M "
        "parameters; cpu only, run with `recur --threads 1` for one core), 'deploy' (the exported model on "
        "onnxruntime against PyTorch eager, one CPU thread, res_indrnn and an equal-size LSTM: real-time factor, "
        "per-chunk latency of 160 ms chunks, model.onnx sizes, the IndRNN recurrence's ONNX forms) or 'all' "
        "(layer and ctc_step)",
    )
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="storage dtype")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per case")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per case, at most")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds of timing per case after which 3 runs suffice"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--aot",
        metavar="TARGETS",
        help="no timing: compile every Triton kernel configuration the layers can launch for these CUDA targets "
        "(e.g. sm_80,sm_90) with Triton's ptxas, no GPU needed; prints registers, spills and shared memory per "
        "configuration, writes bench_aot.json/.md; exits 1 if any fails (with --quick: a representative four)",
    )
    parser.add_argument("--jobs", type=int, default=None, help="--aot: compiler processes (default: CPUs, at most 8)")
    parser.add_argument(
        "--gpu-check",
        action="store_true",
        help="on a GPU machine: the CUDA tests, the layer and ctc_step benchmarks on cuda and a 2-minute FSDD "
        "training run, then one pass/fail summary (gpu_check.md in --out); see docs/GPU.md",
    )
    parser.add_argument(
        "--fsdd", default=None, help="--gpu-check: the FSDD recordings (default: ../shared/data/fsdd, as the recipe)"
    )


def run(args: argparse.Namespace) -> int:
    if args.aot is not None and args.gpu_check:
        raise UserError("--aot and --gpu-check are separate runs; give one")
    if args.aot is not None:
        from toolkit.bench.aot import command as aot_command

        return aot_command(args.aot, args.out, quick=args.quick, jobs=args.jobs, progress=not args.no_progress)
    if args.gpu_check:
        from toolkit.bench.gpu_check import command as gpu_check_command

        return gpu_check_command(args.out, quick=args.quick, fsdd=args.fsdd)
    if args.case == "profile_step":
        from toolkit.bench.profile import command as profile_command

        if args.device == "cuda":
            raise UserError("--case profile_step profiles the CPU step; leave out --device cuda")
        threads = getattr(args, "threads", None) or 1
        return profile_command(args.out, args.quick, args.warmup, args.repeats, threads, not args.no_progress)

    import torch

    from toolkit.bench import (
        cpu_ctc_grid,
        cpu_grid,
        gpu_ctc_grid,
        gpu_grid,
        quick_ctc_grid,
        quick_grid,
        run_bench,
        write_results,
    )

    if args.case == "streams":
        return _run_streams(args)
    if args.case == "deploy":
        return _run_deploy(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is visible; use --device cpu")
    if args.warmup < 0 or args.repeats < 1 or args.budget <= 0:
        raise UserError("need --warmup >= 0, --repeats >= 1 and --budget > 0")
    if args.dtype != "float32" and device == "cpu":
        raise UserError("16-bit dtypes are for --device cuda; on cpu use --dtype float32")
    if args.quick:
        grid, ctc_grid, warmup, repeats = quick_grid(), quick_ctc_grid(), 1, 2
    else:
        grid = gpu_grid() if device == "cuda" else cpu_grid()
        ctc_grid = gpu_ctc_grid() if device == "cuda" else cpu_ctc_grid()
        warmup, repeats = args.warmup, args.repeats
    if args.case == "layer":
        ctc_grid = []
    elif args.case == "ctc_step":
        grid = []
    result = run_bench(
        device,
        grid,
        ctc_grid=ctc_grid,
        dtype=getattr(torch, args.dtype),
        warmup=warmup,
        repeats=repeats,
        budget_s=args.budget,
        progress=not args.no_progress,
    )
    result["meta"]["case"] = args.case
    json_path, md_path = write_results(result, args.out, args.case)
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path}")
    if result["skipped"]:
        print(f"{result['skipped']} case(s) failed and were skipped")
    return 0


def _run_streams(args: argparse.Namespace) -> int:
    """``--case streams``: the capacity search on the CPU (see ``toolkit.bench.streams``)."""
    import os

    import torch

    from toolkit.bench import write_results
    from toolkit.bench.runner import _meta
    from toolkit.bench.streams import cpu_streams_grid, quick_streams_grid, run_streams_bench

    if args.device == "cuda":
        raise UserError("--case streams measures CPU capacity (streams per core); use --device cpu")
    grid = quick_streams_grid() if args.quick else cpu_streams_grid()
    result = {"meta": _meta(torch.device("cpu"), torch.float32, grid[0].warmup, grid[0].rounds), "skipped": 0}
    result["meta"]["case"] = "streams"
    result["rows"] = run_streams_bench(grid, progress=not args.no_progress)
    result["skipped"] = sum("error" in r for r in result["rows"])
    result["meta"]["load_average_end"] = list(os.getloadavg())
    json_path, md_path = write_results(result, args.out, "streams")
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path}")
    return 0


def _run_deploy(args: argparse.Namespace) -> int:
    """``--case deploy``: CPU, one thread, onnxruntime against PyTorch (toolkit.bench.deploy)."""
    from toolkit.bench.deploy import cpu_deploy_config, quick_deploy_config, run_deploy_bench, write_deploy_results

    if args.device == "cuda":
        raise UserError("--case deploy times the CPU runtime (onnxruntime, one thread); leave out --device cuda")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError("--case deploy needs onnxruntime: pip install 'recur[deploy]'") from None
    cfg = quick_deploy_config() if args.quick else cpu_deploy_config()
    result = run_deploy_bench(cfg, repeats=2 if args.quick else args.repeats, progress=not args.no_progress)
    json_path, md_path = write_deploy_results(result, args.out)
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path}")
    return 0
