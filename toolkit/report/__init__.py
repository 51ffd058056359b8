"""Results tables and plots from experiment folders (reads ``metrics.json`` only, plus checkpoints for the
IndRNN per-neuron view)."""

from .results import Run, collect_runs, results_markdown, write_report

__all__ = ["Run", "collect_runs", "results_markdown", "write_report"]
