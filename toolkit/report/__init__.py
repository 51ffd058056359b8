"""Results tables and plots from experiment folders (reads ``metrics.json`` only, plus checkpoints for the
IndRNN per-neuron view).

Modules, bottom up (each imports only those before it): ``runs`` (reading runs, shared formatting),
``sections`` (generated sections inside hand-written markdown), ``neurons``; ``results``, ``seq`` (tables);
``reproduction``; ``plots``; ``write`` (what ``recur report`` writes).
"""

from .reproduction import build_rows, reproduction_markdown, write_reproduction
from .results import results_markdown, results_table
from .runs import Run, collect_runs
from .write import refresh_results, write_report

__all__ = [
    "Run",
    "build_rows",
    "collect_runs",
    "refresh_results",
    "reproduction_markdown",
    "results_markdown",
    "results_table",
    "write_report",
    "write_reproduction",
]
