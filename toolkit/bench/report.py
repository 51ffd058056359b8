"""The benchmark's files: JSON with every figure, and a markdown table for people."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from toolkit.data.io import write_json, write_text

from .cases import MODELS
from .ctc_step import PREFIX as CTC_PREFIX

# targets from the issue: (what, threshold)
CPU_SPEEDUP_TARGET = 6.0
CPU_OVERHEAD_TARGET = 0.30
GPU_SPEEDUP_TARGET = 15.0
GPU_BANDWIDTH_TARGET = 0.70
GPU_CTC_STEP_TARGET = 3.0  # lstm_time / res_indrnn_time of a whole CTC training step, equal sizes

CTC_MODELS_LEGEND = {
    CTC_PREFIX + "res_indrnn": "a whole CTC training step (forward, CTC loss, backward, AdamW) of a res_indrnn "
    "CTCTask; T = input frames, stacked by 3 before the encoder, H = encoder width per direction",
    CTC_PREFIX + "lstm": "the same step for an LSTM CTCTask whose encoder has the same parameter count",
}


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e3:,.2f}"


def _params(r: dict) -> str:
    """Whole-model parameters (encoder alone in brackets), for the CTC step rows."""
    if r.get("params") is None:
        return ""
    enc = f" (enc {r['encoder_params'] / 1e6:,.2f}M)" if r.get("encoder_params") is not None else ""
    return f"{r['params'] / 1e6:,.2f}M{enc}"


def _row_cells(r: dict, copy_bps: float) -> list[str]:
    hidden = "-" if r.get("hidden") is None else str(r["hidden"])
    size = [r["model"], str(r["steps"]), str(r["batch"]), hidden]
    if "error" in r:
        return [*size, "failed: " + r["error"], "", "", "", _params(r)]
    speed = f"{r['speedup_vs_lstm']:.2f}x" if "speedup_vs_lstm" in r else ""
    bw = ""
    if "fwd_bwd_Bps" in r:
        bw = f"{r['fwd_bwd_Bps'] / 1e9:,.1f} ({r['fwd_bwd_Bps'] / copy_bps:.0%} of copy)"
    mem = "" if r.get("peak_memory_bytes") is None else f"{r['peak_memory_bytes'] / 2**20:,.0f}"
    return [*size, _ms(r["median_s"]), speed, bw, mem, _params(r)]


def paired_ratio(row: dict, other: dict) -> float:
    """Median over rounds of row's time / other's time in the same round (the models ran
    round-robin, so a burst of load on a shared machine cancels out of each ratio)."""
    pairs = [a / b for a, b in zip(row["times_s"], other["times_s"], strict=False)]
    return statistics.median(pairs)


def _verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def targets(result: dict) -> list[str]:
    """One line per issue target that this run's sizes can answer, with the figure measured."""
    device = result["meta"]["device"]
    by_size: dict[tuple, dict] = {}
    for r in result["rows"]:
        if "median_s" in r and r.get("case") != "ctc_step":
            by_size.setdefault((r["steps"], r["batch"], r["hidden"]), {})[r["model"]] = r
    lines = []
    for (t, b, h), rows in by_size.items():
        size = f"T={t}, B={b}, H={h}"
        if "indrnn" in rows and "speedup_vs_lstm" in rows["indrnn"]:
            goal = CPU_SPEEDUP_TARGET if device == "cpu" else GPU_SPEEDUP_TARGET
            s = rows["indrnn"]["speedup_vs_lstm"]
            paired = paired_ratio(rows["lstm"], rows["indrnn"])
            lines.append(
                f"- {size}: IndRNN layer {s:.1f}x faster than LSTM; median of the per-round ratios {paired:.1f}x "
                f"(target >= {goal:g}x: {_verdict(s >= goal)})"
            )
        if device == "cpu" and "indrnn" in rows and "projection" in rows:
            extra = rows["indrnn"]["median_s"] / rows["projection"]["median_s"] - 1
            paired = paired_ratio(rows["indrnn"], rows["projection"]) - 1
            ok = extra <= CPU_OVERHEAD_TARGET
            lines.append(
                f"- {size}: the recurrence adds {extra:.0%} to the input matmul alone; median of the "
                f"per-round ratios {paired:.0%} (target <= {CPU_OVERHEAD_TARGET:.0%}: {_verdict(ok)})"
            )
        if device == "cuda" and "recurrence" in rows:
            frac = rows["recurrence"]["fwd_bwd_Bps"] / result["copy_bandwidth_Bps"]
            ok = frac >= GPU_BANDWIDTH_TARGET
            lines.append(
                f"- {size}: recurrence kernel at {frac:.0%} of copy bandwidth "
                f"(target >= {GPU_BANDWIDTH_TARGET:.0%}: {_verdict(ok)})"
            )
    return lines + ctc_targets(result)


def ctc_targets(result: dict) -> list[str]:
    """One line per CTC step size: lstm_time / res_indrnn_time, equal parameter counts (target on GPU)."""
    device = result["meta"]["device"]
    rows = [r for r in result["rows"] if r.get("case") == "ctc_step" and "median_s" in r]
    lines = []
    for r in rows:
        if r["model"] != CTC_PREFIX + "res_indrnn" or "speedup_vs_lstm" not in r:
            continue
        lstm = next(
            (o for o in rows if o["model"] == CTC_PREFIX + "lstm" and (o["steps"], o["batch"], o["num_layers"])
             == (r["steps"], r["batch"], r["num_layers"])),
            None,
        )  # fmt: skip
        if lstm is None:
            continue
        s, paired = r["speedup_vs_lstm"], paired_ratio(lstm, r)
        verdict = (
            f"target >= {GPU_CTC_STEP_TARGET:g}x: {_verdict(s >= GPU_CTC_STEP_TARGET)}"
            if device == "cuda"
            else "the issue's target is for GPU"
        )
        lines.append(
            f"- CTC training step, B={r['batch']}, T={r['steps']} frames (/{r['subsampling']}), {r['num_layers']} "
            f"layers{', bidirectional' if r.get('bidirectional') else ''}, {r['params'] / 1e6:.2f}M vs "
            f"{lstm['params'] / 1e6:.2f}M parameters: res_indrnn {s:.2f}x faster than LSTM (lstm_time / "
            f"res_indrnn_time); median of the per-round ratios {paired:.2f}x ({verdict})"
        )
    return lines


def streams_markdown(result: dict) -> str:
    """The ``streams`` case as markdown: conditions, capacity per model, the ratio."""
    m, rows = result["meta"], result["rows"]
    cfg = next((r for r in rows if "chunk_ms" in r), {})
    chunk = cfg.get("chunk_ms", float("nan"))
    threads = m["cpu_threads"]
    head = [
        f"# recur bench: concurrent streams, {m['device']} ({m['device_name']})",
        "",
        f"How many real-time streams one server process sustains on {threads} CPU thread"
        f"{'' if threads == 1 else 's'}: N streams served together by `StreamBatch`, one {chunk:g} ms chunk per "
        "stream per round (fbank, CMVN and frame stacking per stream, the encoder once for all streams, greedy "
        f"CTC); N is sustained while the median round takes under {chunk:g} ms, i.e. every stream's real-time "
        "factor (round time / chunk) < 1; the median, as other processes' bursts on a shared machine land on a few "
        "rounds (the mean and the 95th percentile are in the table). The two models' searches (double N, then "
        f"bisect) take turns. {cfg.get('warmup', '?')} warm-up and {cfg.get('rounds', '?')} timed rounds per stream "
        "count; "
        f"untrained unidirectional models, {cfg.get('feat_dim', '?')} mel bins, {cfg.get('sampling_rate', '?')} Hz, "
        f"frames stacked by {cfg.get('subsampling', '?')}. torch {m['torch']}; load average "
        f"{m['load_average_start'][0]:.2f} at start, {m.get('load_average_end', [float('nan')])[0]:.2f} at end. "
        f"Started {m['started_utc']}.",
        "",
        "| model | layers | hidden | params | streams | round ms (mean / median / p95) | RTF (median) "
        "| streams vs lstm |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    body = []
    for r in rows:
        cells = [r["model"], str(r.get("num_layers", "")), str(r.get("hidden", "")), _params(r)]
        if "error" in r:
            cells += ["failed: " + r["error"], "", "", ""]
        elif not r.get("streams"):
            cells += ["0 (one stream is slower than real time)", "", "", ""]
        else:
            times = " / ".join(_ms(r[k]) for k in ("round_mean_s", "round_median_s", "round_p95_s"))
            ratio = f"{r['streams_vs_lstm']:.2f}x" if "streams_vs_lstm" in r else ""
            cells += [str(r["streams"]), times, f"{r['rtf_median']:.2f}", ratio]
        body.append("| " + " | ".join(cells) + " |")
    lines = []
    for r in rows:
        if r["model"] == "streams/res_indrnn" and "streams_vs_lstm" in r:
            lstm = next(o for o in rows if o["model"] == "streams/lstm")
            lines.append(
                f"- {chunk:g} ms chunks, {threads} thread{'' if threads == 1 else 's'}: res_indrnn sustains "
                f"{r['streams']} real-time streams, LSTM {lstm['streams']} ({r['streams_vs_lstm']:.2f}x), "
                f"{r['encoder_params'] / 1e6:.2f}M vs {lstm['encoder_params'] / 1e6:.2f}M encoder parameters"
            )
    tail = ["", "## Capacity", "", *lines] if lines else []
    if result.get("skipped"):
        tail += ["", f"{result['skipped']} case(s) failed and were skipped (see the table)."]
    return "\n".join(head + body + tail) + "\n"


def markdown_table(result: dict) -> str:
    """The results as markdown: conditions, the table, and the targets."""
    if result["rows"] and all(r.get("case") == "streams" for r in result["rows"]):
        return streams_markdown(result)
    m = result["meta"]
    copy_bps = result["copy_bandwidth_Bps"]
    head = [
        f"# recur bench: {m['device']} ({m['device_name']})",
        "",
        f"Forward+backward of one layer, input size = hidden size (`ctc_step/` rows: a whole CTC training "
        f"step of equal-size models), {m['dtype']}; median of up to "
        f"{m['repeats']} runs after {m['warmup']} warm-up runs{' (synchronised)' if m['device'] == 'cuda' else ''}. "
        f"Recurrence implementation: {m['recurrence_impl']}. torch {m['torch']}, triton {m['triton']}, "
        f"{m['cpu_threads']} CPU threads; load average {m['load_average_start'][0]:.2f} at start, "
        f"{m.get('load_average_end', [float('nan')])[0]:.2f} at end. Copy bandwidth measured in this run: "
        f"{copy_bps / 1e9:,.1f} GB/s. Started {m['started_utc']}.",
        "",
        "| model | T | B | H | median ms | speedup vs lstm | recurrence GB/s | peak MiB | params |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    body = ["| " + " | ".join(_row_cells(r, copy_bps)) + " |" for r in result["rows"]]
    shown = {r["model"] for r in result["rows"]}
    names = {**MODELS, **CTC_MODELS_LEGEND}
    legend = ["", "Models: " + "; ".join(f"`{k}`: {v}" for k, v in names.items() if k in shown) + "."]
    goals = targets(result)
    tail = ["", "## Targets", "", *goals] if goals else []
    if result["skipped"]:
        tail += ["", f"{result['skipped']} case(s) failed and were skipped (see the table)."]
    return "\n".join(head + body + legend + tail) + "\n"


def write_results(result: dict, out_dir: str | os.PathLike, case: str = "all") -> tuple[Path, Path]:
    """Write ``bench_<device>.json`` and ``bench_<device>.md`` into ``out_dir`` (created), atomically.

    A run of one ``case`` only (``layer``, ``ctc_step``) writes ``bench_<device>_<case>.*``, so it does not
    overwrite the files of a full run.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench_{result['meta']['device']}" + ("" if case == "all" else f"_{case}")
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    write_json(json_path, result)
    write_text(md_path, markdown_table(result))
    return json_path, md_path
