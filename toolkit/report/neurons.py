"""IndRNN recurrent weights u read from a run's checkpoint, one vector per layer."""

from __future__ import annotations

from pathlib import Path

import torch

from toolkit.errors import UserError
from toolkit.train.loading import find_checkpoint


def recurrent_weights(run_dir: Path) -> dict[str, list[float]]:
    """{parameter name: u values} for every IndRNN recurrence in the run's best (else last) checkpoint."""
    try:
        path = find_checkpoint(run_dir)
    except UserError:
        return {}
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt.get("state_dict", ckpt)
    return {k.removesuffix(".u"): v.flatten().tolist() for k, v in state.items() if k.endswith(".u") and v.dim() == 1}
