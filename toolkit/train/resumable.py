"""A DataLoader that resumes mid-epoch exactly where a checkpoint left it.

Lightning saves ``state_dict()`` of any training loader that has one and hands it back through
``load_state_dict`` before iterating again. Without this a resumed run either replays the start
of the epoch or (worse) silently drifts from the run it continues.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochSampler(Sampler[int]):
    """Indices ``0 .. n-1``, shuffled by a permutation fixed by ``(seed, epoch)``, from ``start`` on."""

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self.order()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # each rank takes every world-th index (set the trainer's use_distributed_sampler to false)
            world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
            order = order[rank : len(order) - len(order) % world : world]
        return iter(order[self.start :])

    def __len__(self) -> int:
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        return self.n // world - self.start


class ResumableLoader(DataLoader):
    """``DataLoader(dataset, batch_size, sampler=EpochSampler(...))`` whose position is checkpointed.

    ``state_dict()`` holds the epoch and the number of batches handed to the training loop. The
    loader has a length, so Lightning fetches batch by batch without prefetching and that count is
    exactly the batches consumed. ``drop_last`` is fixed to True so every batch has ``batch_size`` items.
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = True, seed: int = 0, **kwargs: Any):
        sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed)
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=True, **kwargs)
        self._consumed = 0
        self._resume_at = 0

    def __iter__(self) -> Iterator[Any]:
        sampler: EpochSampler = self.sampler
        sampler.start = self._resume_at * self.batch_size
        self._consumed, self._resume_at = self._resume_at, 0
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def __len__(self) -> int:
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        return len(self.dataset) // world // self.batch_size

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(int(state["epoch"]))
        self._resume_at = int(state["batches"])
