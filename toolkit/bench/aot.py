"""``recur bench --aot sm_80,sm_90``: compile every Triton recurrence kernel the layers can launch for real
GPU targets, on a machine without a GPU, and report each binary's registers, spills and shared memory.

Triton ships its own ``ptxas``, so ``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))`` runs
the whole pipeline (Triton IR -> LLVM -> PTX -> cubin) with no driver. The kernels are the package's real
``@triton.jit`` functions (``toolkit.nn.kernels.triton_kernel``), and each configuration is specialised
exactly as the runtime would specialise a launch: the arguments of ``_FusedRecurrence`` (stand-in tensors
of the right dtypes, the integer sizes and strides of an example problem) go through Triton's own binder,
so pointer alignment and divisibility-by-16 of the sizes end up in the signature as at a real launch.

The configurations (``kernel_configs``): forward and backward; identity, relu, tanh; forward and reverse
walk; with and without lengths; float32, bfloat16 and float16 storage (16-bit as under autocast: ``u``,
``h0`` and the gradients of ``u`` and ``h0`` stay float32); the backward's three gradient patterns (output
gradient only, final-state gradient only, both); and every ``(BLOCK, num_warps)`` that ``launch_config``
picks for batch sizes 1..256 and hidden sizes 32..4096 on the SM counts of that architecture's GPUs.

Registers and spills come from ``ptxas -v`` (the log Triton prints with ``TRITON_DUMP_PTXAS_LOG``);
shared memory is Triton's allocation (``metadata.shared``) plus any static shared memory ptxas reports.
Each configuration compiles in a fresh temporary Triton cache, so the figures are from this run's ptxas.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from toolkit.errors import ConfigError

ACTIVATIONS = ("identity", "relu", "tanh")
DTYPES = ("float32", "bfloat16", "float16")
# backward: (has the output gradient, has the final-state gradient); never neither (no backward then)
GRAD_PATTERNS = ((True, False), (False, True), (True, True))
# SM counts of the GPUs of each architecture (launch_config's choice depends on them)
SM_COUNTS = {
    80: (108, 56),  # A100, A30
    86: (84, 72, 28),  # RTX A6000 / 3090, A10, A2-class
    89: (142, 128, 58),  # L40S, RTX 4090, L4
    90: (132, 114),  # H100/H200 SXM, H100 PCIe
    100: (148,),  # B200
    120: (170, 84),  # RTX 5090-class
}
BATCH_SIZES = (1, 4, 8, 16, 32, 64, 128, 256)
HIDDEN_SIZES = (32, 64, 128, 256, 512, 768, 1024, 2048, 4096)
EXAMPLE_STEPS = 1000  # T of the example launch: not a multiple of 16, as most real lengths are not
# per-SM limits shared by sm_80 .. sm_120 (registers, resident warps, resident blocks)
REGS_PER_SM, MAX_WARPS_PER_SM, MAX_BLOCKS_PER_SM, REG_ALLOC_UNIT = 65536, 64, 32, 256


@dataclass(frozen=True)
class KernelConfig:
    """One compiled binary: which kernel, its constexprs, storage dtype, and the example launch it specialises.

    ``batch`` and ``hidden`` are an example problem for which ``launch_config`` picks ``block``/``num_warps``;
    ``hidden`` also fixes the divisibility specialisation of H and of the strides.
    """

    kernel: str  # "fwd" or "bwd"
    activation: str
    reverse: bool
    has_len: bool
    dtype: str
    block: int
    num_warps: int
    batch: int
    hidden: int
    has_gy: bool = True  # backward only: dL/dh given
    has_glast: bool = False  # backward only: dL/d(final state) given

    @property
    def label(self) -> str:
        parts = [self.kernel, self.activation, "rev" if self.reverse else "fwd-walk"]
        parts.append("len" if self.has_len else "nolen")
        if self.kernel == "bwd":
            parts.append(_grads(self.has_gy, self.has_glast))
        parts += [self.dtype, f"B{self.block}w{self.num_warps}"]
        if self.hidden % 16:
            parts.append(f"H{self.hidden}")
        return " ".join(parts)


def _grads(has_gy: bool, has_glast: bool) -> str:
    return "+".join(name for name, on in (("gy", has_gy), ("glast", has_glast)) if on)


def parse_targets(text: str) -> list[int]:
    """``"sm_80,sm_90"`` (or ``"80,90a"``) -> [80, 90]; a one-line ValueError for anything else."""
    archs = []
    for item in (t.strip() for t in text.split(",")):
        m = re.fullmatch(r"(?:sm_?)?(\d{2,3})a?", item.lower())
        if not m:
            raise ConfigError(f"--aot: {item!r} is not a CUDA target; write sm_80,sm_90 (compute capability x10)")
        arch = int(m.group(1))
        if arch < 75:
            raise ConfigError(f"--aot: sm_{arch} is older than Triton supports (sm_75 and newer)")
        if arch not in archs:
            archs.append(arch)
    if not archs:
        raise ConfigError("--aot: no target given; write e.g. sm_80,sm_90")
    return archs


def ptxas_path(arch: int) -> str | None:
    """The ptxas Triton would run for ``arch`` (it ships one), or None when it is missing."""
    try:
        from triton.backends.nvidia.compiler import get_ptxas

        path = get_ptxas(arch).path
    except Exception:
        return None
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


def launch_choices(arch: int) -> dict[tuple[int, int], tuple[int, int]]:
    """{(BLOCK, num_warps): an example (batch, hidden)} over the realistic sizes, as ``launch_config`` picks.

    The example prefers a typical width (512, then 1024, 256, ...) and the smallest batch giving that
    choice; all the example widths are multiples of 16, as model widths mostly are
    (``odd_hidden_configs`` covers the other specialisation).
    """
    from toolkit.nn.kernels.triton_kernel import launch_config

    found: dict[tuple[int, int], tuple[int, int]] = {}
    by_preference = sorted(HIDDEN_SIZES, key=lambda h: abs(math.log2(h / 512)) + (h < 512) * 0.5)
    for sms in SM_COUNTS.get(arch, (132,)):
        for hidden in by_preference:
            for batch in BATCH_SIZES:
                choice = launch_config(batch, hidden, sms)
                if choice not in found:
                    found[choice] = (batch, hidden)
    return dict(sorted(found.items()))


def kernel_configs(arch: int, dtypes: Iterable[str] = DTYPES) -> list[KernelConfig]:
    """Every configuration the layers can launch on ``arch`` (see the module docstring), forward then backward."""
    configs = []
    choices = launch_choices(arch)
    for kernel in ("fwd", "bwd"):
        grads = GRAD_PATTERNS if kernel == "bwd" else ((True, False),)
        for dtype in dtypes:
            for (block, warps), (batch, hidden) in choices.items():
                for activation in ACTIVATIONS:
                    for reverse in (False, True):
                        for has_len in (False, True):
                            for has_gy, has_glast in grads:
                                configs.append(
                                    KernelConfig(
                                        kernel, activation, reverse, has_len, dtype, block, warps, batch, hidden,
                                        has_gy, has_glast,
                                    )
                                )  # fmt: skip
    return configs


def odd_hidden_configs(arch: int) -> list[KernelConfig]:
    """The other divisibility specialisation: a hidden size that is no multiple of 16 (``width_for_params``
    picks such widths), relu, both kernels, every dtype, with and without lengths, the smallest block."""
    (block, warps), _ = next(iter(launch_choices(arch).items()))
    return [
        KernelConfig(kernel, "relu", False, has_len, dtype, block, warps, 1, 1000 + 7)
        for kernel in ("fwd", "bwd")
        for dtype in DTYPES
        for has_len in (False, True)
    ]


def quick_configs() -> list[KernelConfig]:
    """A representative handful (the test suite's): forward and backward, float32 and bfloat16, with lengths;
    the backward with both gradients, one of them reversed tanh (the largest register footprint)."""
    return [
        KernelConfig("fwd", "relu", False, True, "float32", 128, 4, 128, 512),
        KernelConfig("fwd", "tanh", True, True, "bfloat16", 64, 2, 32, 512),
        KernelConfig("bwd", "relu", False, True, "float32", 128, 4, 128, 512, True, True),
        KernelConfig("bwd", "tanh", True, True, "bfloat16", 64, 2, 32, 512, True, True),
    ]


def _launch_args(cfg: KernelConfig) -> tuple[Callable, list, dict]:
    """(kernel, positional args, constexpr kwargs) exactly as ``_FusedRecurrence`` passes them for ``cfg``,
    with one-element stand-in tensors (only their dtype and alignment enter the specialisation)."""
    import torch

    from toolkit.nn.kernels import triton_kernel as tk

    store = getattr(torch, cfg.dtype)
    f32 = torch.float32  # u and h0 (and the u/h0 gradients) stay float32 under autocast

    def t(dtype):
        return torch.empty(8, dtype=dtype)

    steps, hidden = EXAMPLE_STEPS, cfg.hidden
    lens = t(torch.int32) if cfg.has_len else None
    common = dict(ACT=tk.ACT_CODES[cfg.activation], REVERSE=cfg.reverse, HAS_LEN=cfg.has_len)
    if cfg.kernel == "fwd":
        a, u, h0, h, last = t(store), t(f32), t(f32), t(store), t(store)
        args = [a, u, h0, lens if lens is not None else h, h, last, steps, hidden, steps * hidden, hidden, hidden]
        return tk._recurrence_fwd, args, dict(**common, BLOCK=cfg.block, CHUNK=tk.CHUNK)
    h, u, h0 = t(store), t(f32), t(f32)
    gy = t(store) if cfg.has_gy else h
    gl = t(store) if cfg.has_glast else h0
    ga, gh0, gu = t(store), t(f32), t(f32)
    args = [
        gy, gl, h, u, h0, lens if lens is not None else h, ga, gh0, gu,
        steps, hidden, steps * hidden, hidden, hidden, hidden,
    ]  # fmt: skip
    extra = dict(HAS_GY=cfg.has_gy, HAS_GLAST=cfg.has_glast, BLOCK=cfg.block, CHUNK=tk.CHUNK)
    return tk._recurrence_bwd, args, dict(**common, **extra)


def _check_real_kernels() -> None:
    from triton.runtime.jit import JITFunction

    from toolkit.nn.kernels import triton_kernel as tk

    if not isinstance(tk._recurrence_fwd, JITFunction) or os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError(
            "TRITON_INTERPRET is set, so the kernels are interpreter functions; unset it to compile them"
        )


_PTXAS_REGS = re.compile(r"Used (\d+) registers")
_PTXAS_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_PTXAS_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas_log(log: str) -> dict:
    """{n_regs, spill_stores, spill_loads, stack_bytes, static_smem} from ``ptxas -v`` output (one kernel)."""
    regs = _PTXAS_REGS.search(log)
    spill = _PTXAS_SPILL.search(log)
    if regs is None or spill is None:
        raise RuntimeError("no register/spill figures in ptxas -v output")
    smem = _PTXAS_SMEM.search(log)
    return {
        "n_regs": int(regs.group(1)),
        "stack_bytes": int(spill.group(1)),
        "spill_stores": int(spill.group(2)),
        "spill_loads": int(spill.group(3)),
        "static_smem": int(smem.group(1)) if smem else 0,
    }


def programs_per_sm(n_regs: int, num_warps: int, shared: int, arch: int) -> int:
    """Programs (CTAs) resident per SM as registers, warps, blocks and shared memory allow (the occupancy
    calculator's rule: registers are allocated per warp in units of 256)."""
    per_warp = math.ceil(n_regs * 32 / REG_ALLOC_UNIT) * REG_ALLOC_UNIT
    by_regs = (REGS_PER_SM // per_warp) // num_warps if per_warp else MAX_BLOCKS_PER_SM
    smem_per_sm = {80: 164, 86: 100, 89: 100, 90: 228, 100: 228, 120: 100}.get(arch, 100) * 1024
    by_smem = smem_per_sm // shared if shared else MAX_BLOCKS_PER_SM
    return max(0, min(by_regs, MAX_WARPS_PER_SM // num_warps, MAX_BLOCKS_PER_SM, by_smem))


def compile_config(cfg: KernelConfig, arch: int) -> dict:
    """Compile one configuration for ``sm_<arch>``; the row {arch, config fields, n_regs, n_spills, shared,
    ...} or, when it fails, {..., error}. Never raises for a compile failure."""
    row = {"arch": f"sm_{arch}", "label": cfg.label, **asdict(cfg)}
    start = time.perf_counter()
    try:
        row.update(_compile(cfg, arch))
    except Exception as err:  # a compile failure is this configuration's result, reported per row
        lines = [ln for ln in str(err).splitlines() if ln.strip()]
        row["error"] = f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]
    row["compile_s"] = round(time.perf_counter() - start, 2)
    return row


def _compile(cfg: KernelConfig, arch: int) -> dict:
    import triton
    from triton import knobs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    _check_real_kernels()
    if ptxas_path(arch) is None:
        raise RuntimeError(f"no ptxas for sm_{arch} in the installed triton")
    fn, args, constexprs = _launch_args(cfg)
    target = GPUTarget("cuda", arch, 32)
    backend = make_backend(target)
    # Triton's own binder: the same signature, constexprs and divisibility attributes as a real launch
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    kwargs = {**constexprs, "num_warps": cfg.num_warps}
    bound, specialization, options = binder(*args, **kwargs)
    options, signature, consts, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
    src = ASTSource(fn=fn, signature=signature, constexprs=consts, attrs=attrs)
    log = io.StringIO()
    with (
        tempfile.TemporaryDirectory(prefix="recur-aot-") as cache,
        knobs.cache.scope(),
        knobs.compilation.scope(),
        knobs.nvidia.scope(),
    ):
        knobs.cache.dir = cache
        knobs.compilation.always_compile = True
        knobs.nvidia.dump_ptxas_log = True
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(src, target=target, options=options.__dict__)
    figures = parse_ptxas_log(log.getvalue())
    shared = int(compiled.metadata.shared) + figures["static_smem"]
    return {
        **figures,
        "n_spills": figures["spill_stores"] + figures["spill_loads"],
        "shared": shared,
        "programs_per_sm": programs_per_sm(figures["n_regs"], cfg.num_warps, shared, arch),
        "cubin_bytes": len(compiled.asm["cubin"]),
    }


def _compile_star(job: tuple[KernelConfig, int]) -> dict:
    return compile_config(*job)


def _spawn_init() -> None:
    import torch

    torch.set_num_threads(1)


@dataclass
class AOTPlan:
    """What to compile: (config, arch) pairs, in the order they are reported."""

    jobs: list[tuple[KernelConfig, int]] = field(default_factory=list)

    @classmethod
    def full(cls, archs: Iterable[int]) -> AOTPlan:
        return cls([(c, a) for a in archs for c in kernel_configs(a) + odd_hidden_configs(a)])

    @classmethod
    def quick(cls, archs: Iterable[int]) -> AOTPlan:
        return cls([(c, a) for a in archs for c in quick_configs()])


def row_line(r: dict) -> str:
    """One configuration's result as a line: target, label, n_regs, n_spills, shared (or the failure)."""
    if "error" in r:
        return f"{r['arch']} {r['label']}: FAILED {r['error']}"
    return (
        f"{r['arch']} {r['label']}: n_regs={r['n_regs']} n_spills={r['n_spills']} shared={r['shared']} "
        f"programs/SM={r['programs_per_sm']} ({r['compile_s']:.1f} s)"
    )


def print_row(r: dict) -> None:
    from tqdm import tqdm

    tqdm.write(row_line(r))


def run_aot(plan: AOTPlan, jobs: int = 1, progress: bool = True, on_row: Callable[[dict], None] | None = None) -> dict:
    """Compile every (config, arch) of ``plan`` (``jobs`` processes); {meta, rows, failed, summary}.

    ``on_row(row)`` is called as each configuration finishes (in plan order)."""
    import triton
    from tqdm import tqdm

    archs = sorted({a for _, a in plan.jobs})
    meta = {
        "targets": [f"sm_{a}" for a in archs],
        "triton": triton.__version__,
        "ptxas": {f"sm_{a}": ptxas_path(a) for a in archs},
        "example_steps": EXAMPLE_STEPS,
        "jobs": jobs,
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    start = time.perf_counter()
    bar = tqdm(total=len(plan.jobs), desc="aot", unit="kernel", disable=not progress)
    rows: list[dict] = []
    if jobs <= 1:
        for job in plan.jobs:
            bar.set_postfix_str(f"sm_{job[1]} {job[0].label}")
            rows.append(compile_config(*job))
            if on_row is not None:
                on_row(rows[-1])
            bar.update(1)
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch/triton state
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_spawn_init) as pool:
            for row in pool.map(_compile_star, plan.jobs):
                rows.append(row)
                if on_row is not None:
                    on_row(row)
                bar.update(1)
    bar.close()
    meta["wall_s"] = round(time.perf_counter() - start, 1)
    result = {"meta": meta, "rows": rows, "failed": sum("error" in r for r in rows)}
    result["summary"] = summarize(result)
    return result


def summarize(result: dict) -> dict:
    """Per target: configurations compiled and failed, max/min registers (and which), spills, max shared."""
    out = {}
    for arch in result["meta"]["targets"]:
        rows = [r for r in result["rows"] if r["arch"] == arch]
        ok = [r for r in rows if "error" not in r]
        entry = {"configs": len(rows), "compiled": len(ok), "failed": len(rows) - len(ok)}
        if ok:
            top = max(ok, key=lambda r: r["n_regs"])
            entry.update(
                max_regs=top["n_regs"],
                max_regs_config=top["label"],
                min_regs=min(r["n_regs"] for r in ok),
                configs_with_spills=sum(r["n_spills"] > 0 for r in ok),
                max_spill_bytes=max(r["n_spills"] for r in ok),
                max_shared=max(r["shared"] for r in ok),
                min_programs_per_sm=min(r["programs_per_sm"] for r in ok),
                compile_s=round(sum(r["compile_s"] for r in rows), 1),
            )
            for kernel in ("fwd", "bwd"):
                ks = [r for r in ok if r["kernel"] == kernel]
                if ks:
                    entry[f"max_regs_{kernel}"] = max(r["n_regs"] for r in ks)
        out[arch] = entry
    return out


def summary_lines(result: dict) -> list[str]:
    lines = []
    for arch, s in result["summary"].items():
        if not s["compiled"]:
            lines.append(f"- {arch}: 0 of {s['configs']} configurations compiled")
            continue
        lines.append(
            f"- {arch}: {s['compiled']} of {s['configs']} configurations compiled; registers/thread "
            f"{s['min_regs']}..{s['max_regs']} (forward max {s.get('max_regs_fwd', '-')}, backward max "
            f"{s.get('max_regs_bwd', '-')}; highest: {s['max_regs_config']}); {s['configs_with_spills']} with "
            f"spills (max {s['max_spill_bytes']} bytes); shared memory max {s['max_shared']} bytes; at least "
            f"{s['min_programs_per_sm']} programs resident per SM; {s['compile_s']:.0f} s of compiling"
        )
    return lines


def markdown(result: dict) -> str:
    m = result["meta"]
    head = [
        f"# recur bench --aot: {', '.join(m['targets'])}",
        "",
        f"The Triton recurrence kernels compiled ahead of time (no GPU) with triton {m['triton']} and its ptxas; "
        f"started {m['started_utc']}, {m['wall_s']:.0f} s with {m['jobs']} process(es). Each row is one binary, "
        f"specialised for an example launch (T={m['example_steps']}, B, H). regs = registers per thread, "
        "spills = spill stores + loads (bytes), shared = shared memory per program (bytes), progs/SM = programs "
        "resident per SM as registers, warps and shared memory allow.",
        "",
        "## Summary",
        "",
        *summary_lines(result),
        "",
        "| target | kernel | act | walk | lengths | grads | dtype | BLOCK | warps | B | H | regs | spills "
        "| shared | progs/SM | compile s |",
        "| --- | --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    body = []
    for r in result["rows"]:
        grads = _grads(r["has_gy"], r["has_glast"]) if r["kernel"] == "bwd" else ""
        cells = [
            r["arch"], r["kernel"], r["activation"], "reverse" if r["reverse"] else "forward",
            "yes" if r["has_len"] else "no", grads, r["dtype"], str(r["block"]), str(r["num_warps"]),
            str(r["batch"]), str(r["hidden"]),
        ]  # fmt: skip
        if "error" in r:
            cells += ["failed: " + r["error"].replace("|", "/"), "", "", "", f"{r['compile_s']:.1f}"]
        else:
            cells += [
                str(r["n_regs"]), str(r["n_spills"]), str(r["shared"]), str(r["programs_per_sm"]),
                f"{r['compile_s']:.1f}",
            ]  # fmt: skip
        body.append("| " + " | ".join(cells) + " |")
    tail = []
    if result["failed"]:
        tail = ["", f"{result['failed']} configuration(s) failed to compile (see the table)."]
    return "\n".join(head + body + tail) + "\n"


def write_aot(result: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``bench_aot.json`` and ``bench_aot.md`` into ``out_dir`` (created), atomically."""
    from toolkit.data.io import write_json, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "bench_aot.json", out / "bench_aot.md"
    write_json(json_path, result)
    write_text(md_path, markdown(result))
    return json_path, md_path


def command(targets: str, out: str | os.PathLike, quick: bool = False, jobs: int | None = None, progress=True) -> int:
    """``recur bench --aot TARGETS``: compile, print the table's summary, write the files; 1 if any failed."""
    from toolkit.errors import UserError

    archs = parse_targets(targets)
    missing = [f"sm_{a}" for a in archs if ptxas_path(a) is None]
    if missing:
        raise UserError(f"--aot: the installed triton has no ptxas for {', '.join(missing)}; reinstall triton")
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise UserError("--aot: TRITON_INTERPRET is set (the kernels would be interpreted); unset it")
    plan = AOTPlan.quick(archs) if quick else AOTPlan.full(archs)
    jobs = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    if jobs < 1:
        raise UserError("--jobs must be >= 1")
    names = ", ".join(f"sm_{a}" for a in archs)
    print(f"recur bench --aot: compiling {len(plan.jobs)} kernel configurations for {names}")
    result = run_aot(plan, jobs=min(jobs, len(plan.jobs)), progress=progress, on_row=print_row)
    json_path, md_path = write_aot(result, out)
    print("\n".join(summary_lines(result)))
    print(f"wrote {json_path} and {md_path}")
    if result["failed"]:
        print(f"{result['failed']} configuration(s) failed to compile")
        return 1
    return 0
