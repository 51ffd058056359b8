"""Duration-bucketed dynamic batches, split across DDP ranks.

Utterances of similar length go together so little of a batch is padding; a batch holds as many
utterances as fit in ``max_seconds`` of *padded* audio (batch size x longest duration in it).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

from toolkit.errors import ConfigError


def _dist_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class BucketBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices; one ``__iter__`` is one epoch on this rank.

    Per epoch (seeded by ``seed`` and ``epoch``, so every rank builds the *same* global list): sort
    by length, cut into ``num_buckets`` buckets of equal count, pack each bucket greedily in length
    order under ``max_seconds`` (and ``max_batch_size``) from a random starting point (so who shares
    a batch changes by epoch, padding stays low), then shuffle the batch order. The global list is
    cut to a multiple of ``num_replicas`` (``drop_uneven=True``, for training: every rank runs the
    same number of steps, as DDP's gradient all-reduce needs) or kept whole (``False``, for
    evaluation: every batch exactly once, so corpus-level figures count no utterance twice; ranks
    may then run one batch more or less), and rank r takes batches r, r + R, r + 2R, ...

    ``sorted_batches=False`` packs each shuffled bucket as it comes instead: a batch then holds
    random lengths from its bucket (more padding). With ``num_buckets=1`` every training batch is a
    random sample of the corpus, so batch-norm statistics seen in training match the population
    statistics used in evaluation; length-sorted batches of very short utterances otherwise train a
    batch-normalised model on statistics it never sees when decoding.

    ``lengths`` are durations in seconds (or token counts for text, with ``max_seconds`` then a token
    budget). An item longer than the budget gets a batch of its own. With ``shuffle=False`` the order
    is sorted by length and identical every epoch. With Lightning, pass ``use_distributed_sampler=False``
    to the Trainer so it keeps this sampler.
    """

    def __init__(
        self,
        lengths: Sequence[float],
        max_seconds: float,
        max_batch_size: int | None = None,
        num_buckets: int = 10,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_uneven: bool = True,
        sorted_batches: bool = True,
    ) -> None:
        if max_seconds <= 0:
            raise ConfigError(f"max_seconds must be positive, got {max_seconds}")
        world, me = _dist_world()
        self.num_replicas = world if num_replicas is None else num_replicas
        self.rank = me if rank is None else rank
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank {self.rank} out of range for {self.num_replicas} replicas")
        self.lengths = [float(x) for x in lengths]
        self.max_seconds, self.max_batch_size = float(max_seconds), max_batch_size
        self.num_buckets, self.shuffle, self.seed = max(1, num_buckets), shuffle, seed
        self.drop_uneven, self.sorted_batches = drop_uneven, sorted_batches
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _pack(self, order: list[int]) -> list[list[int]]:
        batches, cur, longest = [], [], 0.0
        for i in order:
            d = self.lengths[i]
            top = max(longest, d)
            full = self.max_batch_size is not None and len(cur) >= self.max_batch_size
            if cur and (top * (len(cur) + 1) > self.max_seconds or full):
                batches.append(cur)
                cur, top = [], d
            cur.append(i)
            longest = top
        if cur:
            batches.append(cur)
        return batches

    def global_batches(self) -> list[list[int]]:
        """Every batch of this epoch over all ranks, in the order they are dealt out."""
        if self._cache and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], i))
        if self.shuffle:
            size = math.ceil(len(order) / self.num_buckets) or 1
            batches = []
            for b in range(0, len(order), size):
                bucket = order[b : b + size]
                rng.shuffle(bucket)  # random order among equal lengths
                if self.sorted_batches:
                    bucket.sort(key=lambda i: self.lengths[i])
                    batches += self._pack_shuffled(bucket, rng)
                else:
                    batches += self._pack(bucket)
            rng.shuffle(batches)
        else:
            batches = self._pack(order)
        r = self.num_replicas
        if r > 1 and not self.drop_uneven:
            # every rank needs at least one batch: split the largest ones before repeating anything
            while len(batches) < r and max(map(len, batches), default=1) > 1:
                big = max(range(len(batches)), key=lambda k: len(batches[k]))
                b = batches.pop(big)
                batches[big:big] = [b[: len(b) // 2], b[len(b) // 2 :]]
        if r > 1 and batches:
            if len(batches) < r:  # fewer batches (or utterances) than ranks: repeat, so every rank has a step
                batches = batches + [batches[k % len(batches)] for k in range(r - len(batches))]
            elif self.drop_uneven:
                batches = batches[: len(batches) - len(batches) % r]
        self._cache = (self.epoch, batches)
        return batches

    def _pack_shuffled(self, bucket: list[int], rng: random.Random) -> list[list[int]]:
        # Randomise where the packing starts inside the bucket so batch membership varies by epoch.
        if len(bucket) > 1:
            k = rng.randrange(len(bucket))
            return self._pack(bucket[k:]) + self._pack(bucket[:k])
        return self._pack(bucket)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.global_batches()
        yield from batches[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        return len(self.global_batches()[self.rank :: self.num_replicas])
