"""Results tables and plots from experiment folders (reads ``metrics.json`` only, plus checkpoints for the
IndRNN per-neuron view)."""

from .reproduction import build_rows, reproduction_markdown, write_reproduction
from .results import Run, collect_runs, results_markdown, write_report

__all__ = [
    "Run",
    "build_rows",
    "collect_runs",
    "reproduction_markdown",
    "results_markdown",
    "write_report",
    "write_reproduction",
]
