"""``metrics.json``: every figure of a run in one file, rewritten atomically as training goes.

Layout (the report reads nothing else)::

    {
      "task": "toolkit.tasks.seq.SeqTask", "exp_dir": "...", "hardware": "...",
      "commit": "e3b1bcf",  # git describe of the toolkit's source tree when this session ran
      "params": {"total": n, "trainable": n, "encoder": n},
      "train": {"steps": n, "epochs": n, "wall_s": s, "batch_s": s, "items": n,
                "item_unit": "sequences", "items_per_s": x, "finished": true},
      "history": [{"step": n, "epoch": e, "wall_s": s, "val/loss": ..., ...}, ...],
      "best": {"monitor": "val/mse", "mode": "min", "value": x, "step": n, "path": "..."},
      "final": {"test/mse": ..., ...},
      "config": {"model": {...}, "data": {...}}  # hyper-parameters of task and datamodule
    }

Wall time and the history live in the checkpoint too (callback state), so a resumed run carries
them on instead of starting its clocks and curves again.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from toolkit.data.io import write_json

from .hardware import hardware_string, source_commit


def _number(value: Any) -> float | int | None:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _figures(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    out = {}
    for key, value in sorted(metrics.items()):
        if key.startswith(prefix):
            number = _number(value)
            if number is not None:
                out[key] = number
    return out


def _default_count(batch: Any) -> int:
    """Batch size of a tensor, or of the first tensor in a dict/tuple batch."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else []
    for value in values:
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 0


class MetricsFile(Callback):
    """Write ``<exp_dir>/metrics.json`` after every validation run, at the end of training and after testing.

    Throughput counts ``pl_module.count_items(batch)`` (default: the batch size; times the number of
    DDP ranks) over the time spent inside training batches (forward, backward, optimiser step), in
    ``pl_module.item_unit``.
    """

    def __init__(self, filename: str = "metrics.json"):
        self.filename = filename
        self.history: list[dict[str, Any]] = []
        self.wall_s = 0.0  # fit time of earlier (resumed-from) sessions
        self.batch_s = 0.0
        self.items = 0
        self.final: dict[str, float] = {}
        self._t0: float | None = None
        self._batch_t0: float | None = None
        self._finished = False
        self._loaded: dict[str, Any] | None = None
        # the source this process runs: read once when the run starts, since the checkout may move on
        # (a commit, an edit) while a long training goes on with the code it imported
        self._commit: str | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._commit is None:
            self._commit = source_commit()

    # --- state carried in checkpoints -------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "wall_s": self.elapsed(), "batch_s": self.batch_s, "items": self.items}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Lightning also restores callback state when *testing* from a checkpoint (best.ckpt): that
        # state is older than this run's, so it is only applied when training resumes.
        self._loaded = state

    def _resume(self) -> None:
        state, self._loaded = self._loaded, None
        if state:
            self.history = list(state.get("history", []))
            self.wall_s = float(state.get("wall_s", 0.0))
            self.batch_s = float(state.get("batch_s", 0.0))
            self.items = int(state.get("items", 0))

    # --- clocks ------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds of training so far, earlier sessions of a resumed run included."""
        return self.wall_s + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._resume()
        self._t0 = time.perf_counter()
        self._finished = False

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._batch_t0 = time.perf_counter()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._batch_t0 is not None:
            self.batch_s += time.perf_counter() - self._batch_t0
            self._batch_t0 = None
        count = getattr(pl_module, "count_items", None)
        items = int(count(batch)) if callable(count) else _default_count(batch)
        # every rank runs a batch of about this size in the same step: count them all
        self.items += items * trainer.world_size

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.wall_s = self.elapsed()
        self._t0 = None
        self._finished = True
        self.write(trainer, pl_module)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # resumed at its limit already (e.g. --trainer.max_steps = the checkpoint's step, to test a run
        # cut off by hand): Lightning skips the training hooks, so the resumed history is applied here,
        # before the test writes metrics.json
        if self._loaded is not None:
            self._resume()
            self._finished = True
            self.write(trainer, pl_module)

    # --- figures -----------------------------------------------------------------------------
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        entry = {"step": trainer.global_step, "epoch": trainer.current_epoch, "wall_s": round(self.elapsed(), 3)}
        entry.update(_figures(trainer.callback_metrics, "val/"))
        # a validation run repeated at the same step (e.g. right after a resume) replaces, never duplicates
        self.history = [h for h in self.history if h["step"] != entry["step"]] + [entry]
        self.write(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._loaded = None

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.final.update(_figures(trainer.callback_metrics, "test/"))
        self.write(trainer, pl_module)

    def path(self, trainer: Trainer) -> str:
        return os.path.join(trainer.default_root_dir, self.filename)

    def summary(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """Everything ``metrics.json`` holds, as a dict."""
        params = sum(p.numel() for p in pl_module.parameters())
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        encoder = getattr(pl_module, "encoder", None)
        wall = self.elapsed()
        train = {
            "steps": trainer.global_step,
            "epochs": trainer.current_epoch,
            "wall_s": round(wall, 3),
            "batch_s": round(self.batch_s, 3),
            "items": self.items,
            "item_unit": getattr(pl_module, "item_unit", "items"),
            "items_per_s": round(self.items / self.batch_s, 3) if self.batch_s > 0 else None,
            "finished": self._finished,
        }
        best = None
        ckpt = trainer.checkpoint_callback
        if ckpt is not None and getattr(ckpt, "monitor", None):
            score = _number(ckpt.best_model_score) if ckpt.best_model_score is not None else None
            at = [h["step"] for h in self.history if score is not None and h.get(ckpt.monitor) == score]
            best = {
                "monitor": ckpt.monitor,
                "mode": ckpt.mode,
                "value": score,
                "step": at[-1] if at else None,
                "path": ckpt.best_model_path or None,
            }
        datamodule = trainer.datamodule
        data = dict(datamodule.hparams) if datamodule is not None else {}
        return {
            "task": f"{type(pl_module).__module__}.{type(pl_module).__qualname__}",
            "exp_dir": os.path.abspath(trainer.default_root_dir),
            "hardware": hardware_string(_accelerator(trainer)),
            "commit": self._commit or source_commit(),
            "params": {
                "total": params,
                "trainable": trainable,
                "encoder": sum(p.numel() for p in encoder.parameters()) if encoder is not None else None,
            },
            "train": train,
            "history": self.history,
            "best": best,
            "final": self.final,
            "config": {"model": _plain(pl_module.hparams), "data": _plain(data)},
        }

    def write(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            write_json(self.path(trainer), self.summary(trainer, pl_module))


def _accelerator(trainer: Trainer) -> str:
    name = type(trainer.accelerator).__name__.lower()
    return "cuda" if "cuda" in name else "cpu" if "cpu" in name else name


def _plain(hparams: Any) -> dict[str, Any]:
    """The JSON-able hyper-parameters, without Lightning's bookkeeping keys (``_class_path``...)."""
    return {k: v for k, v in dict(hparams).items() if not k.startswith("_") and _jsonable(v)}


def _jsonable(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v) for k, v in value.items())
    return False


def update_final(exp_dir: str | os.PathLike, figures: dict[str, float]) -> None:
    """Merge figures measured after training (decoding, LM evaluation) into ``<exp_dir>/metrics.json``
    ``final``, atomically; the one writer of that file besides the training callback."""
    path = Path(exp_dir) / "metrics.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data.setdefault("final", {}).update(figures)
    write_json(path, data)
