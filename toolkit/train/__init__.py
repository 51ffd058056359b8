"""Training machinery shared by every task: the ``recur fit`` CLI, checkpoints, metrics.json, resumable data.

A task (a LightningModule in :mod:`toolkit.tasks`) plugs in by keeping a small contract:

* it logs its figures under ``train/``, ``val/`` and ``test/`` prefixes;
* ``monitor`` and ``monitor_mode`` name the dev figure that picks the ``best`` checkpoint
  (e.g. ``"val/mse"``, ``"min"``);
* ``count_items(batch) -> int`` and ``item_unit`` (e.g. ``"sequences"``, ``"frames"``,
  ``"tokens"``) give the throughput that ``metrics.json`` reports.
"""

from .checkpoints import BestAndLast
from .hardware import hardware_string
from .metrics_file import MetricsFile
from .optim import build_optimizer
from .resumable import EpochSampler, ResumableLoader

__all__ = [
    "BestAndLast",
    "EpochSampler",
    "MetricsFile",
    "ResumableLoader",
    "build_optimizer",
    "hardware_string",
]
