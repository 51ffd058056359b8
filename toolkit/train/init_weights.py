"""Starting a run from another run's weights (fine-tuning), with a fresh optimiser and schedule."""

from __future__ import annotations

import os

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from toolkit.errors import UserError
from toolkit.train.loading import find_checkpoint


class InitWeights(Callback):
    """Load the model weights of ``checkpoint`` (a ``.ckpt`` file or an experiment folder: its best,
    else last checkpoint) before training starts, as ESPnet's ``--init_param`` does.

    Only the weights travel: optimiser, schedule, epoch and step start afresh. The weights are loaded
    in ``setup``, before Lightning restores a checkpoint, so ``--ckpt_path last`` on the fine-tuning run
    resumes that run rather than starting over from ``checkpoint``. Every tensor must match in name and
    shape (the same architecture and tokenizer).
    """

    def __init__(self, checkpoint: str | os.PathLike):
        self.checkpoint = str(checkpoint)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        path = find_checkpoint(self.checkpoint)
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
        except (OSError, RuntimeError, KeyError) as err:
            raise UserError(f"InitWeights: {path} is not a readable Lightning checkpoint ({err})") from None
        try:
            pl_module.load_state_dict(state)  # strict: names and shapes must all match
        except RuntimeError as err:
            detail = "; ".join(line.strip() for line in str(err).splitlines()[1:]) or str(err)
            raise UserError(f"InitWeights: {path} does not fit this model ({detail}); "
                            "give a checkpoint of the same architecture and tokenizer") from None
