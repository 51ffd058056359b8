"""Finding the checkpoint of an experiment folder (loading it is ``toolkit.api``'s job)."""

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
