"""IndRNN recurrent weights u read from a run's checkpoint, one vector per layer."""

from __future__ import annotations

from pathlib import Path

import torch


def find_checkpoint(run_dir: Path) -> Path | None:
    for name in ("best.ckpt", "last.ckpt"):
        path = run_dir / "checkpoints" / name
        if path.is_file():
            return path
    return None


def recurrent_weights(run_dir: Path) -> dict[str, list[float]]:
    """{parameter name: u values} for every IndRNN recurrence in the run's best (else last) checkpoint."""
    path = find_checkpoint(run_dir)
    if path is None:
        return {}
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt.get("state_dict", ckpt)
    return {k.removesuffix(".u"): v.flatten().tolist() for k, v in state.items() if k.endswith(".u") and v.dim() == 1}
