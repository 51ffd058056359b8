"""``recur bench --case profile_step``: where one CPU training step of the IndRNN paper's long-sequence tasks
goes, on one thread: the recurrence (forward and backward) against the input projections and the rest.

The two problems are built from their recipes (``model.init_args`` of ``recipes/adding/{base,indrnn}.yaml``
with max_len 1000, and of ``recipes/seq_mnist/{base,indrnn}.yaml``): the adding problem at T = 1000, B = 50,
two IndRNN layers of 128; sequential MNIST at T = 784, B = 50, six layers of 128 with batch normalisation and
dropout. The step is what training does (the SeqTask's forward, its loss, backward, the optimiser step and
zero_grad), on one fixed batch (adding-problem sequences from its generator; random pixels for MNIST: the
arithmetic does not depend on the values).

Each part is timed inside the step, on the one CPU thread that runs it all (so the parts never overlap):
the recurrence's forward by wrapping ``elementwise_recurrence`` and its backward by hooks on its autograd
node; each input projection's forward by module hooks and its backward (the ``addmm`` node computing the
weight, bias and input gradients) by node hooks; the optimiser by a timer around ``step``/``zero_grad``.
"other" is the step's time minus those parts: read-out, loss, batch norm, dropout, masking, clamping u.
A plain step (no hooks) runs round-robin with the instrumented one, to show what the hooks cost.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from toolkit.errors import ConfigError, UserError

PARTS = ("recurrence_fwd", "recurrence_bwd", "projection_fwd", "projection_bwd", "optimizer", "other")


@dataclass(frozen=True)
class Problem:
    """One task to profile: its recipe (for the model) and the batch shape."""

    name: str
    configs: tuple[str, ...]  # the recipe's configs, relative to the checkout's root, later ones on top
    steps: int
    batch: int
    encoder_opts: tuple[tuple[str, object], ...] = ()  # what the recipe sets on the command line


PROBLEMS = (
    Problem("adding", ("recipes/adding/base.yaml", "recipes/adding/indrnn.yaml"), 1000, 50, (("max_len", 1000),)),
    Problem("smnist", ("recipes/seq_mnist/base.yaml", "recipes/seq_mnist/indrnn.yaml"), 784, 50),
)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def model_args(problem: Problem) -> dict:
    """``model.init_args`` of the problem's recipe: its configs merged as ``recur fit`` merges them."""
    import yaml

    args: dict = {}
    for name in problem.configs:
        path = repo_root() / name
        if not path.is_file():
            raise UserError(f"profile_step: {path} not found (run from a source checkout)")
        with open(path, encoding="utf-8") as f:
            layer = (yaml.safe_load(f).get("model") or {}).get("init_args") or {}
        opts = {**(args.get("encoder_opts") or {}), **(layer.get("encoder_opts") or {})}
        args.update(layer)
        if opts:
            args["encoder_opts"] = opts
    if problem.encoder_opts:
        args["encoder_opts"] = {**(args.get("encoder_opts") or {}), **dict(problem.encoder_opts)}
    return args


def build(problem: Problem, seed: int = 0):
    """(task, x, y): the recipe's SeqTask in training mode and one batch for it."""
    from toolkit.tasks.seq import SeqTask

    torch.manual_seed(seed)
    task = SeqTask(**model_args(problem)).train()
    gen = torch.Generator().manual_seed(seed)
    if problem.name == "adding":
        from toolkit.seqdata.adding import adding_example

        pairs = [adding_example(problem.steps, gen) for _ in range(problem.batch)]
        x = torch.stack([p[0] for p in pairs])
        y = torch.stack([p[1] for p in pairs])
    else:
        x = torch.rand(problem.batch, problem.steps, task.hparams.input_size, generator=gen)
        y = torch.randint(0, task.hparams.num_outputs, (problem.batch,), generator=gen)
    return task, x, y


def _loss(task, x: Tensor, y: Tensor) -> Tensor:
    out = task(x)
    return F.cross_entropy(out, y) if task.loss_name == "ce" else F.mse_loss(out.view_as(y), y)


class PartTimer:
    """Accumulates seconds per part during one step (see the module docstring for what is timed where)."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self._open: dict[int, float] = {}

    def reset(self) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self._open.clear()

    def time_node(self, node, part: str) -> None:
        """Time an autograd node's execution (its backward) into ``part``."""
        key = id(node)

        def pre(grad_outputs):
            self._open[key] = time.perf_counter()

        def post(grad_inputs, grad_outputs):
            self.seconds[part] += time.perf_counter() - self._open.pop(key)

        node.register_prehook(pre)
        node.register_hook(post)


def _find_node(tensor: Tensor, accept: Callable[[str], bool], depth: int = 4):
    """The first autograd node at or below ``tensor.grad_fn`` (breadth first, ``depth`` levels) whose name
    ``accept`` takes, or None."""
    level = [tensor.grad_fn] if tensor.grad_fn is not None else []
    for _ in range(depth):
        nxt = []
        for node in level:
            if accept(node.name()):
                return node
            nxt += [n for n, _ in node.next_functions if n is not None]
        level = nxt
    return None


def _is_view(name: str) -> bool:
    return "View" in name or "Reshape" in name or "Alias" in name


@contextlib.contextmanager
def instrumented(task, timer: PartTimer) -> Iterator[None]:
    """Inside the block, ``task``'s IndRNN cells report their recurrence and projection times to ``timer``."""
    from toolkit.nn import indrnn

    original = indrnn.elementwise_recurrence

    def timed_recurrence(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        timer.seconds["recurrence_fwd"] += time.perf_counter() - start
        h = out[0] if isinstance(out, tuple) else out
        node = _find_node(h, lambda name: "Recurrence" in name)
        if node is None:
            raise RuntimeError("profile_step: the recurrence's autograd node was not found")
        timer.time_node(node, "recurrence_bwd")
        return out

    handles = []

    def pre(module, inputs):
        timer._open[id(module)] = time.perf_counter()

    def post(module, inputs, output):
        timer.seconds["projection_fwd"] += time.perf_counter() - timer._open.pop(id(module))
        # the matmul's node (the views above it are bypassed once the recurrence overwrites its output)
        node = _find_node(output, lambda name: not _is_view(name))
        if node is not None:
            timer.time_node(node, "projection_bwd")

    for name, module in task.encoder.named_modules():
        if name.endswith(".input") and isinstance(module, torch.nn.Linear):
            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    if not handles:
        raise RuntimeError("profile_step: no IndRNN input projection found in the encoder")
    indrnn.elementwise_recurrence = timed_recurrence
    try:
        yield
    finally:
        indrnn.elementwise_recurrence = original
        for h in handles:
            h.remove()


def make_step(task, x: Tensor, y: Tensor, timer: PartTimer | None = None) -> Callable[[], None]:
    """One training step on (x, y); with ``timer``, its parts are timed (``timer.seconds`` after the call,
    "other" filled in, plus "total")."""
    optimizer = task.configure_optimizers()["optimizer"]

    def plain() -> None:
        loss = _loss(task, x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def timed() -> None:
        timer.reset()
        start = time.perf_counter()
        with instrumented(task, timer):
            loss = _loss(task, x, y)
            loss.backward()
        opt = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        end = time.perf_counter()
        timer.seconds["optimizer"] = end - opt
        timer.seconds["total"] = end - start
        timer.seconds["other"] = timer.seconds["total"] - sum(v for k, v in timer.seconds.items() if k in PARTS)

    return plain if timer is None else timed


LOOPS = ("python", "compiled")


def parse_variant(variant: str) -> tuple[str, bool]:
    """``"python"`` -> ("python", False); ``"compiled+ftz"`` -> ("compiled", True): which loop runs the CPU
    recurrence (the PyTorch loop or the C++ loops of ``cpp_kernel``), and whether denormals are flushed to
    zero for the whole step."""
    loop, _, flag = variant.partition("+")
    if loop not in LOOPS or flag not in ("", "ftz"):
        raise ConfigError(f"profile_step: unknown variant {variant!r}; write python, compiled, python+ftz, ...")
    return loop, flag == "ftz"


@contextlib.contextmanager
def flush_denormal(on: bool) -> Iterator[None]:
    """Flush denormal floats to zero inside the block (x86 FTZ/DAZ: on this thread), off again after."""
    if on and not torch.set_flush_denormal(True):
        raise RuntimeError("profile_step: this CPU cannot flush denormals (no SSE3)")
    try:
        yield
    finally:
        if on:
            torch.set_flush_denormal(False)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def profile(
    problems: tuple[Problem, ...] = PROBLEMS,
    variants: tuple[str, ...] = ("python", "python+ftz"),
    warmup: int = 2,
    repeats: int = 10,
    num_threads: int = 1,
    progress: bool = True,
    problem_override: Callable[[Problem], Problem] | None = None,
) -> dict:
    """Profile each problem's step under each variant (``parse_variant``): the CPU recurrence's loop, and with
    ``+ftz`` denormals flushed to zero for the whole step (``torch.set_flush_denormal``).

    Per problem, every variant's instrumented step and plain step run round-robin (a burst of load from
    other processes hits them alike). Returns {meta, rows}: one row per (problem, variant) with the median
    of each part, its share of the step, and the plain step's median and times.
    """
    from toolkit.nn.kernels.cpp_kernel import use_compiled

    meta = {
        "device": "cpu",
        "threads": num_threads,
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "warmup": warmup,
        "repeats": repeats,
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": list(os.getloadavg()),
    }
    rows = []
    with threads(num_threads):
        for problem in problems:
            if problem_override is not None:
                problem = problem_override(problem)
            task, x, y = build(problem)
            args = task.hparams
            runs: dict[str, tuple[Callable, PartTimer | None]] = {}
            for variant in variants:
                timer = PartTimer()
                runs[f"{variant}/parts"] = (make_step(task, x, y, timer), timer)
                runs[f"{variant}/plain"] = (make_step(task, x, y), None)
            samples: dict[str, list] = {name: [] for name in runs}
            for round_index in range(warmup + repeats):
                for name, (fn, timer) in runs.items():
                    loop, flush = parse_variant(name.split("/")[0])
                    with use_compiled(loop == "compiled"), flush_denormal(flush):
                        start = time.perf_counter()
                        fn()
                        wall = time.perf_counter() - start
                    if round_index >= warmup:
                        samples[name].append(dict(timer.seconds) if timer is not None else {"total": wall})
                if progress:
                    print(f"profile_step: {problem.name} round {round_index + 1}/{warmup + repeats}", flush=True)
            for variant in variants:
                parts = samples[f"{variant}/parts"]
                median = {k: statistics.median(s[k] for s in parts) for k in (*PARTS, "total")}
                row = {
                    "problem": problem.name,
                    **asdict(problem),
                    "hidden": args.hidden_size,
                    "layers": args.num_layers,
                    "variant": variant,
                    "loop": parse_variant(variant)[0],
                    "flush_denormal": parse_variant(variant)[1],
                    "step_median_s": median["total"],
                    "plain_step_median_s": statistics.median(s["total"] for s in samples[f"{variant}/plain"]),
                    "plain_times_s": [s["total"] for s in samples[f"{variant}/plain"]],
                    "parts_median_s": {k: median[k] for k in PARTS},
                    "shares": {k: median[k] / median["total"] for k in PARTS},
                    "recurrence_share": (median["recurrence_fwd"] + median["recurrence_bwd"]) / median["total"],
                    "samples": parts,
                }
                rows.append(row)
    meta["load_average_end"] = list(os.getloadavg())
    return {"meta": meta, "rows": rows}


def markdown(result: dict) -> str:
    m = result["meta"]
    lines = [
        "# recur bench --case profile_step: cpu",
        "",
        f"One training step (forward, loss, backward, optimiser) of the recipes' IndRNN models on {m['threads']} "
        f"CPU thread(s); median of {m['repeats']} instrumented steps after {m['warmup']} warm-up steps, each "
        f"part timed inside the step; 'plain' is the same step without hooks, run round-robin with it. torch "
        f"{m['torch']}; load average {m['load_average_start'][0]:.2f} at start, "
        f"{m.get('load_average_end', [float('nan')])[0]:.2f} at end; started {m['started_utc']}.",
        "",
        "| problem | T | B | layers x H | variant | step ms | plain step ms | recurrence fwd | recurrence bwd "
        "| projection fwd | projection bwd | optimizer | other | recurrence share |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        parts = [f"{r['parts_median_s'][k] * 1e3:,.1f} ({r['shares'][k]:.0%})" for k in PARTS]  # ms (share of the step)
        lines.append(
            f"| {r['problem']} | {r['steps']} | {r['batch']} | {r['layers']} x {r['hidden']} | {r['variant']} | "
            f"{r['step_median_s'] * 1e3:,.1f} | {r['plain_step_median_s'] * 1e3:,.1f} | "
            + " | ".join(parts)
            + f" | {r['recurrence_share']:.0%} |"
        )
    lines += [
        "",
        "Parts: ms (share of the instrumented step's median). Variant: the CPU recurrence's loop (`python`: the "
        "PyTorch loop; `compiled`: the C++ loops, which flush denormals while they run); `+ftz`: denormals "
        "flushed to zero for the whole step (`torch.set_flush_denormal(True)`).",
    ]
    lines += comparison_lines(result)
    return "\n".join(lines) + "\n"


COMPARISONS = (
    ("python", "compiled", "the compiled loops as shipped (before -> after)"),
    ("python+ftz", "compiled+ftz", "the compiled loops alone (denormals flushed in both)"),
    ("python", "python+ftz", "flushing denormals alone (PyTorch loop in both)"),
)


def comparison_lines(result: dict) -> list[str]:
    """Per problem, the plain-step medians of each pair of ``COMPARISONS`` that ran, and their ratio
    (also the median of the per-round ratios: the variants ran round-robin)."""
    out = []
    rows = {(r["problem"], r["variant"]): r for r in result["rows"]}
    for problem in dict.fromkeys(r["problem"] for r in result["rows"]):
        for before, after, what in COMPARISONS:
            b, a = rows.get((problem, before)), rows.get((problem, after))
            if b is None or a is None:
                continue
            pairs = [x / y for x, y in zip(b["plain_times_s"], a["plain_times_s"], strict=False)]
            b_ms, a_ms = b["plain_step_median_s"] * 1e3, a["plain_step_median_s"] * 1e3
            out.append(
                f"- {problem}, {what}: step {b_ms:,.1f} ms ({before}) -> {a_ms:,.1f} ms ({after}), {b_ms / a_ms:.2f}x "
                f"(median of the per-round ratios {statistics.median(pairs):.2f}x); recurrence "
                f"{(b['parts_median_s']['recurrence_fwd'] + b['parts_median_s']['recurrence_bwd']) * 1e3:,.1f} -> "
                f"{(a['parts_median_s']['recurrence_fwd'] + a['parts_median_s']['recurrence_bwd']) * 1e3:,.1f} ms, "
                f"{b['recurrence_share']:.0%} -> {a['recurrence_share']:.0%} of the step"
            )
    return ["", "## Compared", "", *out] if out else []


def write(result: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    from toolkit.data.io import write_json, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "bench_cpu_profile_step.json", out / "bench_cpu_profile_step.md"
    write_json(json_path, result)
    write_text(md_path, markdown(result))
    return json_path, md_path


def command(out: str | os.PathLike, quick: bool, warmup: int, repeats: int, num_threads: int, progress: bool) -> int:
    """``recur bench --case profile_step``: profile, print the table, write the files."""
    from toolkit.nn.kernels.cpp_kernel import cpp_available

    loops = ("python", "compiled") if cpp_available() else ("python",)
    variants = tuple(v for loop in loops for v in (loop, f"{loop}+ftz"))
    override = None
    if quick:
        warmup, repeats = 1, 2

        def override(p: Problem) -> Problem:
            return Problem(p.name, p.configs, 24, 4, p.encoder_opts)

    result = profile(PROBLEMS, variants, warmup, repeats, num_threads, progress, override)
    json_path, md_path = write(result, out)
    print(md_path.read_text(encoding="utf-8"))
    print(f"wrote {json_path} and {md_path}")
    return 0
