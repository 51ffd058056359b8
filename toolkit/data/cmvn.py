"""Global cepstral mean and variance normalisation, computed once per training set, stored as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from toolkit.data.io import write_json
from toolkit.errors import UserError


class GlobalCMVN(torch.nn.Module):
    """``forward(feats (..., F)) -> (feats - mean) / std`` with per-dimension statistics."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, count: int = 0) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        self.count = int(count)

    @classmethod
    def from_features(cls, feats: Iterable[torch.Tensor], floor: float = 1e-5) -> GlobalCMVN:
        """Accumulate sums in float64 over an iterable of ``(T, F)`` tensors."""
        total = sq = None
        count = 0
        for x in feats:
            if x.numel() == 0:
                continue
            x = x.double()
            s, q = x.sum(0), (x * x).sum(0)
            total = s if total is None else total + s
            sq = q if sq is None else sq + q
            count += x.shape[0]
        if count == 0:
            raise UserError("no feature frames to compute CMVN statistics from: the training manifest is empty")
        mean = total / count
        var = (sq / count - mean * mean).clamp_min(floor * floor)
        return cls(mean, var.sqrt(), count)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.mean) / self.std

    def save(self, path: str | os.PathLike, features: dict[str, int] | None = None) -> None:
        """Write the statistics as JSON; ``features`` (``sampling_rate``, ``num_mel_bins``) records the
        settings they were computed with, so training can follow them (``recur fit --data_dir``)."""
        write_json(path, {"dim": int(self.mean.numel()), "frames": self.count, **(features or {}),
                          "mean": self.mean.tolist(), "std": self.std.tolist()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> GlobalCMVN:
        path = Path(path)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            mean, std = torch.tensor(obj["mean"]), torch.tensor(obj["std"])
        except FileNotFoundError:
            raise UserError(f"CMVN statistics {path} not found: compute them with the stats stage") from None
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise UserError(f"CMVN statistics {path} are unreadable ({err}); delete the file and recompute") from None
        if mean.shape != std.shape or mean.dim() != 1 or (std <= 0).any():
            raise UserError(f"CMVN statistics {path} are inconsistent; delete the file and recompute")
        return cls(mean, std, int(obj.get("frames", 0)))
