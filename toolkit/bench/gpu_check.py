"""``recur bench --gpu-check``: one command that says whether a GPU machine runs recur correctly and fast.

Four parts, each a subprocess whose whole output goes to ``<out>/gpu_check_<part>.log``:

1. ``cuda_tests``: pytest on the CUDA test files (``tests/test_*cuda*.py``) and ``tests/test_aot.py``;
   passes when nothing fails and nothing is skipped (a skip here means CUDA or Triton was not usable).
2. ``bench_layer``: ``recur bench --device cuda --case layer`` (the GPU size grid); passes when every case ran.
3. ``bench_ctc_step``: ``recur bench --device cuda --case ctc_step``; passes when both models ran.
4. ``fsdd_train``: ``recur run recipes/fsdd/recipe.yaml --models res_indrnn --set train_time=00:00:02:00``
   up to the decode stage, in ``<out>/gpu_check_fsdd``; passes when it finished, trained on the GPU
   (``metrics.json``'s hardware names it) and decoded the test set.

It ends in one summary (``gpu_check.md`` and ``gpu_check.json``): pass/fail per part with its key figures;
the exit status is 0 only when every part passed. Without a visible CUDA GPU it refuses in one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REFUSAL = "no CUDA GPU visible; run this on a GPU machine"
TRAIN_TIME = "00:00:02:00"
QUICK_TRAIN_TIME = "00:00:00:20"
# the target size for the layer benchmark (its figures lead the summary)
TARGET_SIZE = "T=1024, B=32, H=1024"
TIMEOUTS_S = {"cuda_tests": 20 * 60, "bench_layer": 45 * 60, "bench_ctc_step": 20 * 60, "fsdd_train": 30 * 60}


@dataclass
class PartResult:
    """One part of the check: passed or not, how long it took, its key figures, and why it failed."""

    name: str
    ok: bool
    seconds: float
    figures: list[str] = field(default_factory=list)
    reason: str = ""
    log: str = ""


def repo_root() -> Path:
    """The source checkout the package lives in (tests/ and recipes/ sit beside toolkit/)."""
    return Path(__file__).resolve().parents[2]


def run_logged(cmd: list[str], log: Path, timeout_s: float, cwd: Path) -> int:
    """Run ``cmd`` with stdout+stderr into ``log``; its exit status, or -1 when it ran past ``timeout_s``."""
    with open(log, "w", encoding="utf-8") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        try:
            return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=cwd, timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n[gpu-check] timed out after {timeout_s:.0f} s\n")
            return -1


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " / ".join(ln.strip()[:200] for ln in text[-lines:])


def _failed(name: str, start: float, log: Path, rc: int, what: str) -> PartResult:
    why = f"timed out ({what})" if rc == -1 else f"{what} exited {rc}"
    return PartResult(name, False, time.perf_counter() - start, reason=f"{why}: {_tail(log)}", log=str(log))


def cuda_tests(out: Path, quick: bool, runner: Callable | None = None) -> PartResult:
    start, root = time.perf_counter(), repo_root()
    log = out / "gpu_check_cuda_tests.log"
    files = sorted(str(p.relative_to(root)) for p in (root / "tests").glob("test_*cuda*.py"))
    if not files:
        return PartResult("cuda_tests", False, 0.0, reason=f"no tests/test_*cuda*.py under {root} (a source checkout)")
    if (root / "tests" / "test_aot.py").is_file():
        files.append("tests/test_aot.py")
    xml = out / "gpu_check_cuda_tests.xml"
    cmd = [sys.executable, "-m", "pytest", *files, "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={xml}"]
    rc = (runner or run_logged)(cmd, log, TIMEOUTS_S["cuda_tests"], root)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    try:
        for suite in ET.parse(xml).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    except (OSError, ET.ParseError):
        return _failed("cuda_tests", start, log, rc, "pytest (no report)")
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    figures = [
        f"{passed} passed, {counts['failures'] + counts['errors']} failed, {counts['skipped']} skipped "
        f"({', '.join(Path(f).name for f in files)})"
    ]
    ok = rc == 0 and counts["failures"] == counts["errors"] == counts["skipped"] == 0 and passed > 0
    reason = ""
    if not ok:
        reason = "tests were skipped: CUDA or Triton not usable" if rc == 0 and counts["skipped"] else _tail(log)
    return PartResult("cuda_tests", ok, time.perf_counter() - start, figures, reason, str(log))


def _bench(case: str, out: Path, quick: bool, runner: Callable | None) -> PartResult:
    from .report import ctc_targets, targets

    name = f"bench_{case}"
    start, log = time.perf_counter(), out / f"gpu_check_{name}.log"
    cmd = [sys.executable, "-m", "toolkit.cli.main", "bench", "--device", "cuda", "--case", case]
    cmd += ["--out", str(out), "--no-progress", *(["--quick"] if quick else [])]
    rc = (runner or run_logged)(cmd, log, TIMEOUTS_S[name], repo_root())
    path = out / f"bench_cuda_{case}.json"
    if rc != 0 or not path.is_file():
        return _failed(name, start, log, rc, "recur bench")
    result = json.loads(path.read_text(encoding="utf-8"))
    lines = [ln.removeprefix("- ") for ln in (targets(result) if case == "layer" else ctc_targets(result))]
    chosen = [ln for ln in lines if TARGET_SIZE in ln] or lines[:2]
    figures = [f"{result['meta'].get('device_name', '?')}: {len(result['rows'])} rows, {result['skipped']} failed"]
    if case == "layer" and lines:
        met = sum(ln.endswith(": met)") for ln in lines)
        figures.append(f"targets met at {met} of {len(lines)} size checks")
    figures += chosen
    ok = result["skipped"] == 0
    reason = "" if ok else f"{result['skipped']} case(s) failed (see {path.with_suffix('.md').name})"
    return PartResult(name, ok, time.perf_counter() - start, figures, reason, str(log))


def bench_layer(out: Path, quick: bool, runner: Callable | None = None) -> PartResult:
    return _bench("layer", out, quick, runner)


def bench_ctc_step(out: Path, quick: bool, runner: Callable | None = None) -> PartResult:
    return _bench("ctc_step", out, quick, runner)


def find_fsdd(given: str | None) -> Path | None:
    """The FSDD folder: ``given``, else the recipe's ``../shared/data/fsdd`` (from here, then from the checkout)."""
    if given:
        return Path(given).resolve()
    root = repo_root()
    for candidate in (Path("../shared/data/fsdd"), root.parent / "shared/data/fsdd", root / "shared/data/fsdd"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def fsdd_train(out: Path, quick: bool, fsdd: str | None = None, runner: Callable | None = None) -> PartResult:
    start, root, log = time.perf_counter(), repo_root(), out / "gpu_check_fsdd_train.log"
    src = find_fsdd(fsdd)
    if src is None or not src.is_dir():
        where = fsdd or "../shared/data/fsdd"
        return PartResult("fsdd_train", False, 0.0, reason=f"FSDD not found at {where}; pass --fsdd DIR", log="")
    exp = (out / "gpu_check_fsdd").resolve()
    train_time = QUICK_TRAIN_TIME if quick else TRAIN_TIME
    cmd = [
        sys.executable, "-m", "toolkit.cli.main", "run", str(root / "recipes/fsdd/recipe.yaml"),
        "--models", "res_indrnn", "--exp", str(exp), "--stop-stage", "decode", "--force",
        "--set", f"train_time={train_time}", "--set", f"src={src}",
    ]  # fmt: skip
    rc = (runner or run_logged)(cmd, log, TIMEOUTS_S["fsdd_train"], root)
    metrics_path = exp / "res_indrnn" / "metrics.json"
    if rc != 0 or not metrics_path.is_file():
        return _failed("fsdd_train", start, log, rc, "recur run")
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    hardware = str(metrics.get("hardware", ""))
    train = metrics.get("train") or {}
    final = metrics.get("final") or {}
    scores = {k: v for k, v in final.items() if k.endswith("/wer") or k.endswith("/cer")}
    figures = [
        hardware.split(";")[0],
        f"{train.get('steps', 0)} steps in {train.get('wall_s', 0):.0f} s "
        f"({train.get('items_per_s') or 0:.0f} {train.get('item_unit', 'items')}/s)",
    ]
    if scores:
        figures.append(", ".join(f"{k} {v:.4g}" for k, v in sorted(scores.items())))
    on_gpu = not hardware.startswith("cpu")
    reasons = []
    if not on_gpu:
        reasons.append(f"trained on the CPU ({hardware.split(';')[0]})")
    if not train.get("steps"):
        reasons.append("no training step recorded")
    if not scores:
        reasons.append("no test WER in metrics.json (decode did not score)")
    return PartResult("fsdd_train", not reasons, time.perf_counter() - start, figures, "; ".join(reasons), str(log))


def summary_markdown(parts: list[PartResult], meta: dict) -> str:
    ok = all(p.ok for p in parts)
    lines = [
        f"# recur bench --gpu-check: {'PASS' if ok else 'FAIL'}",
        "",
        f"{meta['device_name']}; torch {meta['torch']}, CUDA {meta['cuda']}, triton {meta['triton']}; "
        f"{meta['started_utc']}, {meta['wall_s']:.0f} s{' (--quick)' if meta['quick'] else ''}.",
        "",
        "| part | result | time | key figures |",
        "| --- | --- | ---: | --- |",
    ]
    for p in parts:
        figures = "; ".join(p.figures + ([f"**{p.reason}**"] if p.reason else [])).replace("|", "/")
        lines.append(f"| {p.name} | {'pass' if p.ok else 'FAIL'} | {p.seconds:.0f} s | {figures} |")
    lines += ["", f"{sum(p.ok for p in parts)} of {len(parts)} parts passed; logs: gpu_check_<part>.log beside this."]
    return "\n".join(lines) + "\n"


def command(out: str | os.PathLike, quick: bool = False, fsdd: str | None = None) -> int:
    """``recur bench --gpu-check``; 0 when every part passed, 1 otherwise (a UserError without a GPU)."""
    import datetime

    import torch

    from toolkit.data.io import write_json, write_text
    from toolkit.errors import UserError

    if not torch.cuda.is_available():
        raise UserError(REFUSAL)
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    out_dir = Path(out).resolve()  # the parts run from the checkout's root
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "device_name": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton_version,
        "quick": quick,
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    start = time.perf_counter()
    parts = []
    checks = [
        ("CUDA tests", lambda: cuda_tests(out_dir, quick)),
        ("layer benchmark on cuda", lambda: bench_layer(out_dir, quick)),
        ("CTC step benchmark on cuda", lambda: bench_ctc_step(out_dir, quick)),
        ("FSDD training run on the GPU", lambda: fsdd_train(out_dir, quick, fsdd)),
    ]
    for title, check in checks:
        print(f"gpu-check: {title} ...", flush=True)
        part = check()
        parts.append(part)
        print(f"gpu-check: {part.name}: {'pass' if part.ok else 'FAIL'} ({part.seconds:.0f} s) "
              f"{'; '.join(part.figures + ([part.reason] if part.reason else []))}", flush=True)  # fmt: skip
    meta["wall_s"] = time.perf_counter() - start
    md = summary_markdown(parts, meta)
    ok = all(p.ok for p in parts)
    write_json(out_dir / "gpu_check.json", {"meta": meta, "ok": ok, "parts": [asdict(p) for p in parts]})
    write_text(out_dir / "gpu_check.md", md)
    print()
    print(md)
    print(f"wrote {out_dir / 'gpu_check.md'} and {out_dir / 'gpu_check.json'}")
    return 0 if ok else 1
