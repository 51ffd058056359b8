"""Runs read from experiment folders (``metrics.json`` only) and the formatting every table shares.

The bottom of ``toolkit.report``: the tables (``results``, ``seq``, ``reproduction``), the plots and the
writers import from here, and this module imports none of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import UserError

# figures a reader compares models by, in the order columns appear
_KEY_HINTS = ("wer", "cer", "per", "ppl", "perplexity", "bpc", "mse", "err", "acc", "loss")
HIGHER_IS_BETTER = ("acc",)


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
    def history(self) -> list[dict[str, Any]]:
        return self.metrics.get("history") or []

    @property
    def config(self) -> dict[str, Any]:
        return self.metrics.get("config") or {}

    @property
    def encoder(self) -> str:
        """The encoder's layer name (``config.model.encoder``), else the run folder's name."""
        return str((self.config.get("model") or {}).get("encoder") or self.name)

    @property
    def is_baseline(self) -> bool:
        return self.name.lower().split("_")[0] == "lstm" or self.name.lower() == "lstm"


def _is_stale(path: Path, root: Path) -> bool:
    # runs the recipe runner moved aside (<model>.stale-<time>) are history, not results
    return any(".stale-" in p for p in path.relative_to(root).parts)


def collect_runs(exp_dir: str | Path) -> list[Run]:
    """The runs of one experiment folder: every ``<exp_dir>/<model>/metrics.json``, else ``exp_dir/metrics.json``
    itself, else every ``metrics.json`` at any depth (e.g. ``exp/adding/T100/indrnn``, named ``T100/indrnn``);
    sorted by path."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise UserError(f"experiment folder not found: {exp_dir}")
    files = [f for f in sorted(exp_dir.glob("*/metrics.json")) if not _is_stale(f, exp_dir)]
    files = files or sorted(exp_dir.glob("metrics.json"))
    if not files:
        files = [f for f in sorted(exp_dir.rglob("metrics.json")) if not _is_stale(f, exp_dir)]
    if not files:
        raise UserError(f"{exp_dir}: no metrics.json in it or its sub-folders; train a model first (recur fit)")
    return load_runs(files, exp_dir)


def find_runs(root: str | Path) -> list[Run]:
    """Every ``metrics.json`` at any depth below ``root`` (runs moved aside as ``*.stale-*`` skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"experiment root not found: {root}")
    files = [f for f in sorted(root.rglob("metrics.json")) if not _is_stale(f, root)]
    if not files:
        raise UserError(f"{root}: no metrics.json below it; train a model first (recur fit)")
    return load_runs(files)


def load_runs(files: list[Path], root: Path | None = None) -> list[Run]:
    """One :class:`Run` per ``metrics.json`` file, named after its folder (relative to ``root`` when the folder
    is deeper than one level below it); a corrupt file is a one-line error."""
    runs = []
    for f in files:
        name = f.parent.name
        if root is not None and f.parent != root and len(f.parent.relative_to(root).parts) > 1:
            name = f.parent.relative_to(root).as_posix()
        try:
            runs.append(Run(name, f.parent, json.loads(f.read_text(encoding="utf-8"))))
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


def commit_of(run: Run, fallback: str | None = None) -> str:
    """The commit the run's training recorded in ``metrics.json``; runs trained before it was recorded get
    ``fallback`` (e.g. the checkout's commit at report time, marked as such), else ``"not recorded"``."""
    recorded = run.metrics.get("commit")
    if recorded:
        return str(recorded)
    return fallback or "not recorded"


def _name(key: str) -> str:
    return key.split("/")[-1].lower()


def fmt_figure(key: str, value: Any) -> str:
    """Error rates (WER, CER, PER) as percentages; everything else as is."""
    if isinstance(value, float) and _name(key) in ("wer", "cer", "per"):
        return f"{100 * value:.2f}%"
    return fmt(value)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def duration(seconds: float | None) -> str:
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


def cell(text: Any) -> str:
    """A markdown table cell: pipes escaped, one line."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def relative_change(value: float | None, baseline: float | None) -> float | None:
    """(value - baseline) / baseline in %, or None when it cannot be computed."""
    if value is None or baseline is None or baseline == 0:
        return None
    return 100.0 * (value - baseline) / abs(baseline)
