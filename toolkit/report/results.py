"""``RESULTS.md``: one row per model of an experiment folder, beside the LSTM baseline."""

from __future__ import annotations

from .runs import (
    HIGHER_IS_BETTER,
    Run,
    cell,
    commit_of,
    duration,
    figure_keys,
    fmt,
    fmt_figure,
    relative_change,
)

__all__ = ["relative_change", "results_markdown", "results_table", "streaming_table"]


def results_table(runs: list[Run], commit_fallback: str | None = None) -> str:
    """The table (one row per run: parameters, final figures, change against the LSTM baseline, training time,
    steps, throughput, decode RTF, hardware, commit) and the line that says what Δ means."""
    keys = figure_keys(runs)
    baseline = next((r for r in runs if r.is_baseline), None)
    head = ["model", "params", *keys]
    if baseline is not None:
        head.append(f"Δ vs {baseline.name} ({keys[0]})" if keys else "Δ vs LSTM")
    head += ["train time", "steps", "throughput", "decode RTF", "hardware", "commit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        row = [f"**{r.name}**" if r.is_baseline else r.name, fmt(r.params)]
        row += [fmt_figure(k, r.final.get(k)) for k in keys]
        if baseline is not None:
            change = relative_change(r.final.get(keys[0]), baseline.final.get(keys[0])) if keys else None
            row.append("baseline" if r is baseline else "-" if change is None else f"{change:+.1f}%")
        t = r.train
        rate = t.get("items_per_s")
        row += [
            duration(t.get("wall_s")),
            fmt(t.get("steps")),
            f"{rate:,.1f} {t.get('item_unit', 'items')}/s" if rate else "-",
            fmt(next((v for k, v in r.final.items() if "rtf" in k.lower()), None), 3),
            str(r.metrics.get("hardware", "-")),
            commit_of(r, commit_fallback),
        ]
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    lines.append("")
    if keys and baseline is not None:
        better = "higher" if any(h in keys[0] for h in HIGHER_IS_BETTER) else "lower"
        lines.append(f"Δ: relative change of `{keys[0]}` against the LSTM baseline ({better} is better).")
    return "\n".join(lines) + "\n"


STREAM_KEY = "latency_median_ms"  # written by `recur stream --set` beside the set's WER/CER/RTF


def streaming_table(runs: list[Run]) -> str:
    """One row per (model, set decoded by `recur stream --set`): chunk, WER/CER, real-time factor, compute
    per chunk (median / p95) and the latency from the end of the audio to the final result; "" when no
    run was streamed."""
    rows = []
    for r in runs:
        for key in sorted(k for k in r.final if k.endswith("/" + STREAM_KEY)):
            tag = key.rsplit("/", 1)[0]
            f = {k.rsplit("/", 1)[1]: v for k, v in r.final.items() if k.rsplit("/", 1)[0] == tag}
            compute = f"{fmt(f.get('chunk_compute_median_ms'), 3)} / {fmt(f.get('chunk_compute_p95_ms'), 3)}"
            rows.append([
                r.name, tag, fmt(f.get("chunk_ms")), fmt_figure("wer", f.get("wer")), fmt_figure("cer", f.get("cer")),
                fmt(f.get("rtf"), 3), compute, fmt(f.get(STREAM_KEY), 3),
            ])  # fmt: skip
    if not rows:
        return ""
    head = ["model", "streamed set", "chunk ms", "WER", "CER", "RTF", "compute per chunk ms (median / p95)",
            "latency ms (end of audio to final result, median)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def results_markdown(runs: list[Run], title: str = "Results", commit_fallback: str | None = None) -> str:
    """A whole page: the title, :func:`results_table` and where the figures come from."""
    return (
        f"# {title}\n\n"
        + results_table(runs, commit_fallback)
        + "Figures are read from each model's `metrics.json`; regenerate with `recur report <exp_dir>`.\n"
    )
