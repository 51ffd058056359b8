"""``recur bench``: forward+backward time of one recurrent layer, IndRNN against the cuDNN baselines, and
a whole CTC training step of a res_indrnn acoustic model against an LSTM one of the same size.

``run_bench`` measures, ``write_results`` writes ``bench_<device>.json`` and ``bench_<device>.md``.
"""

from __future__ import annotations

from .ctc_step import CTCConfig, cpu_ctc_grid, gpu_ctc_grid, quick_ctc_grid
from .report import markdown_table, write_results
from .runner import Config, cpu_grid, gpu_grid, quick_grid, run_bench

__all__ = [
    "CTCConfig",
    "Config",
    "cpu_ctc_grid",
    "cpu_grid",
    "gpu_ctc_grid",
    "gpu_grid",
    "markdown_table",
    "quick_ctc_grid",
    "quick_grid",
    "run_bench",
    "write_results",
]
