"""The long-memory benchmarks' tables: the adding problem (per T and model: solved or not, after how many
steps) and pixel MNIST (sequential / permuted: dev and test error).

A run belongs to a benchmark by its saved config (``metrics.json`` ``config.data``): ``seq_len`` is the
adding problem at T = seq_len, ``permuted`` is pixel MNIST.
"""

from __future__ import annotations

from .runs import Run, cell, commit_of, duration, fmt

ADDING_SOLVED = 0.01  # test MSE below which the adding problem counts as solved
ADDING_BASELINE = 1.0 / 6.0  # MSE of always predicting the mean, 1.0
_MODEL_ORDER = ("indrnn", "res_indrnn", "dense_indrnn", "irnn", "lstm")


def benchmark(run: Run) -> tuple[str, int | None] | None:
    """(``"adding"``, T), (``"smnist"`` or ``"pmnist"``, None), or None for any other run."""
    data = run.config.get("data") or {}
    if "seq_len" in data:
        return "adding", int(data["seq_len"])
    if "permuted" in data:
        return ("pmnist" if data["permuted"] else "smnist"), None
    return None


def _model_key(run: Run) -> tuple:
    enc = run.encoder
    return (_MODEL_ORDER.index(enc) if enc in _MODEL_ORDER else len(_MODEL_ORDER), enc, run.name)


def first_below(run: Run, key: str, limit: float) -> dict | None:
    """The first dev evaluation (its ``history`` entry: step, wall_s, ...) at which ``key`` was below ``limit``."""
    return next((h for h in run.history if h.get(key) is not None and h[key] < limit), None)


def _step_and_minutes(entry: dict | None) -> str:
    if entry is None:
        return "-"
    wall = entry.get("wall_s")
    return fmt(entry["step"]) + ("" if wall is None else f" ({wall / 60:.1f} min)")


def _rate(run: Run) -> str:
    rate = run.train.get("items_per_s")
    return f"{rate:,.0f}" if rate else "-"


def _steps(run: Run) -> str:
    steps = fmt(run.train.get("steps"))
    return steps + (" (unfinished)" if run.train.get("finished") is False else "")


def adding_table(runs: list[Run], commit_fallback: str | None = None) -> str:
    """One row per (T, model): params, steps, training time, sequences/s, last dev MSE, test MSE, solved
    (test MSE < 0.01), the first step with dev MSE < 0.01 and the training time it took, hardware, commit."""
    rows = sorted(((benchmark(r)[1], r) for r in runs), key=lambda p: (p[0], _model_key(p[1])))
    head = [
        "T", "model", "params", "steps", "train time", "seq/s", "last dev MSE", "test MSE",
        f"solved (< {ADDING_SOLVED})", f"first dev MSE < {ADDING_SOLVED} at step (training time)", "hardware", "commit",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for T, r in rows:
        test = r.final.get("test/mse")
        last = next((h["val/mse"] for h in reversed(r.history) if h.get("val/mse") is not None), None)
        at = first_below(r, "val/mse", ADDING_SOLVED)
        row = [
            fmt(T), r.encoder, fmt(r.params), _steps(r), duration(r.train.get("wall_s")), _rate(r),
            "-" if last is None else f"{last:.4f}", "-" if test is None else f"{test:.4f}",
            "-" if test is None else "yes" if test < ADDING_SOLVED else "no", _step_and_minutes(at),
            str(r.metrics.get("hardware", "-")), commit_of(r, commit_fallback),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    lines += [
        "",
        f"Solved: test MSE < {ADDING_SOLVED} (always predicting the mean gives {ADDING_BASELINE:.3f}); last dev MSE: "
        "the run's last dev evaluation.",
    ]
    return "\n".join(lines) + "\n"


def mnist_table(runs: list[Run], commit_fallback: str | None = None) -> str:
    """One row per pixel-MNIST run: task, model, params, steps, training time, sequences/s, best dev error %
    (its step), test error % (and on how many test images), hardware, commit."""
    rows = sorted(runs, key=lambda r: (benchmark(r)[0] != "smnist", _model_key(r)))
    head = [
        "task", "model", "params", "steps", "train time", "seq/s", "best dev error % (step)", "test error %",
        "hardware", "commit",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        best = r.metrics.get("best") or {}
        dev = f"{best['value']:.1f} ({fmt(best.get('step'))})" if best.get("value") is not None else "-"
        test = r.final.get("test/err")
        limit = (r.config.get("data") or {}).get("test_limit") or 0
        test_cell = "-" if test is None else f"{test:.1f}" + (f" (first {limit:,})" if limit else "")
        row = [
            "sequential" if benchmark(r)[0] == "smnist" else "permuted", r.encoder, fmt(r.params), _steps(r),
            duration(r.train.get("wall_s")), _rate(r), dev, test_cell, str(r.metrics.get("hardware", "-")),
            commit_of(r, commit_fallback),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def seq_tables(runs: list[Run], commit_fallback: str | None = None) -> str:
    """The benchmark tables of ``runs`` (each under a heading), or "" when none of them is a benchmark run."""
    adding = [r for r in runs if (benchmark(r) or ("",))[0] == "adding"]
    mnist = [r for r in runs if (benchmark(r) or ("",))[0] in ("smnist", "pmnist")]
    parts = []
    if adding:
        parts.append("### Adding problem\n\n" + adding_table(adding, commit_fallback))
    if mnist:
        parts.append("### Pixel MNIST\n\n" + mnist_table(mnist, commit_fallback))
    return "\n".join(parts)
