"""``RESULTS.md``: one row per model of an experiment folder, beside the LSTM baseline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import UserError

# figures a reader compares models by, in the order columns appear
_KEY_HINTS = ("wer", "cer", "per", "ppl", "perplexity", "bpc", "mse", "err", "acc", "loss")
_HIGHER_IS_BETTER = ("acc",)


@dataclass
class Run:
    name: str
    path: Path
    metrics: dict[str, Any] = field(repr=False)

    @property
    def final(self) -> dict[str, float]:
        return self.metrics.get("final") or {}

    @property
    def params(self) -> int | None:
        return (self.metrics.get("params") or {}).get("total")

    @property
    def train(self) -> dict[str, Any]:
        return self.metrics.get("train") or {}

    @property
    def monitor(self) -> str | None:
        return (self.metrics.get("best") or {}).get("monitor")

    @property
    def is_baseline(self) -> bool:
        return self.name.lower().split("_")[0] == "lstm" or self.name.lower() == "lstm"


def collect_runs(exp_dir: str | Path) -> list[Run]:
    """Every ``<exp_dir>/<model>/metrics.json`` (or ``exp_dir/metrics.json`` itself), sorted by name."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise UserError(f"experiment folder not found: {exp_dir}")
    # runs the recipe runner moved aside (<model>.stale-<time>) are history, not results
    files = [f for f in sorted(exp_dir.glob("*/metrics.json")) if ".stale-" not in f.parent.name]
    files = files or sorted(exp_dir.glob("metrics.json"))
    if not files:
        raise UserError(f"{exp_dir}: no metrics.json in it or its sub-folders; train a model first (recur fit)")
    return load_runs(files)


def load_runs(files: list[Path]) -> list[Run]:
    """One :class:`Run` per ``metrics.json`` file, named after its folder; a corrupt file is a one-line error."""
    runs = []
    for f in files:
        try:
            runs.append(Run(f.parent.name, f.parent, json.loads(f.read_text(encoding="utf-8"))))
        except ValueError as err:
            raise UserError(f"{f}: not valid JSON ({err}); rerun the training stage that writes it") from None
    return runs


def figure_keys(runs: list[Run]) -> list[str]:
    """The final figures shown as columns: the comparable ones (WER, BPC, ...) first."""
    keys = sorted({k for r in runs for k in r.final})
    hinted = [k for h in _KEY_HINTS for k in keys if h in k.split("/")[-1].lower()]
    ordered = list(dict.fromkeys(hinted))
    if any(not _name(k).endswith("loss") for k in ordered):  # losses only when nothing better exists
        ordered = [k for k in ordered if not _name(k).endswith("loss")]
    return ordered or keys


def _name(key: str) -> str:
    return key.split("/")[-1].lower()


def _fmt_figure(key: str, value: Any) -> str:
    """Error rates (WER, CER, PER) as percentages; everything else as is."""
    if isinstance(value, float) and _name(key) in ("wer", "cer", "per"):
        return f"{100 * value:.2f}%"
    return _fmt(value)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    return (
        f"{seconds / 3600:.2f} h"
        if seconds >= 3600
        else f"{seconds / 60:.1f} min"
        if seconds >= 60
        else f"{seconds:.1f} s"
    )


def relative_change(value: float | None, baseline: float | None) -> float | None:
    """(value - baseline) / baseline in %, or None when it cannot be computed."""
    if value is None or baseline is None or baseline == 0:
        return None
    return 100.0 * (value - baseline) / abs(baseline)


def results_markdown(runs: list[Run], title: str = "Results") -> str:
    keys = figure_keys(runs)
    baseline = next((r for r in runs if r.is_baseline), None)
    head = ["model", "params", *keys]
    if baseline is not None:
        head.append(f"Δ vs {baseline.name} ({keys[0]})" if keys else "Δ vs LSTM")
    head += ["train time", "steps", "throughput", "decode RTF", "hardware"]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        row = [f"**{r.name}**" if r.is_baseline else r.name, _fmt(r.params)]
        row += [_fmt_figure(k, r.final.get(k)) for k in keys]
        if baseline is not None:
            change = relative_change(r.final.get(keys[0]), baseline.final.get(keys[0])) if keys else None
            row.append("baseline" if r is baseline else "-" if change is None else f"{change:+.1f}%")
        t = r.train
        rate = t.get("items_per_s")
        row += [
            _duration(t.get("wall_s")),
            _fmt(t.get("steps")),
            f"{rate:,.1f} {t.get('item_unit', 'items')}/s" if rate else "-",
            _fmt(next((v for k, v in r.final.items() if "rtf" in k.lower()), None), 3),
            str(r.metrics.get("hardware", "-")),
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if keys:
        better = "higher" if any(h in keys[0] for h in _HIGHER_IS_BETTER) else "lower"
        lines.append(f"Δ: relative change of `{keys[0]}` against the LSTM baseline ({better} is better).")
    lines.append("Figures are read from each model's `metrics.json`; regenerate with `recur report <exp_dir>`.")
    return "\n".join(lines) + "\n"


def write_report(exp_dir: str | Path, title: str | None = None) -> Path:
    """Write ``RESULTS.md`` and the PNG plots into ``exp_dir``; returns the RESULTS.md path."""
    from toolkit.data.io import write_text

    from .plots import write_plots

    exp_dir = Path(exp_dir)
    runs = collect_runs(exp_dir)
    text = results_markdown(runs, title or f"Results: {exp_dir.name}")
    plots = write_plots(runs, exp_dir)
    if plots:
        text += "\n## Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots) + "\n"
    return write_text(exp_dir / "RESULTS.md", text)
