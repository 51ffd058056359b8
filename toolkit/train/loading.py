"""Finding and loading a trained task from an experiment folder or a checkpoint file."""

from __future__ import annotations

import os
from pathlib import Path

from toolkit.errors import UserError


def find_checkpoint(model: str | os.PathLike) -> Path:
    """EXP_DIR (its ``checkpoints/best.ckpt``, else ``last.ckpt``) or a checkpoint file."""
    path = Path(model)
    if path.is_file():
        return path
    for name in ("best.ckpt", "last.ckpt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    raise UserError(f"--model {model}: no checkpoint (expected {path}/checkpoints/best.ckpt or a .ckpt file)")


def load_task(task_class: type, model: str | os.PathLike, device: str = "cpu", what: str = "model"):
    """``task_class`` restored from ``model`` (see :func:`find_checkpoint`), in evaluation mode on ``device``."""
    ckpt = find_checkpoint(model)
    try:
        task = task_class.load_from_checkpoint(ckpt, map_location=device, weights_only=False)
    except (KeyError, TypeError) as err:
        raise UserError(f"{ckpt} is not a checkpoint of a {what} ({err})") from None
    return task.eval().to(device)
