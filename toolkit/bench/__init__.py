"""``recur bench``: forward+backward time of one recurrent layer, IndRNN against the cuDNN baselines.

``run_bench`` measures, ``write_results`` writes ``bench_<device>.json`` and ``bench_<device>.md``.
"""

from __future__ import annotations

from .report import markdown_table, write_results
from .runner import Config, cpu_grid, gpu_grid, quick_grid, run_bench

__all__ = ["Config", "cpu_grid", "gpu_grid", "markdown_table", "quick_grid", "run_bench", "write_results"]
