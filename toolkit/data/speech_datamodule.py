"""Lightning datamodule for speech: manifests -> duration-bucketed batches of fbank features and tokens."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from toolkit.data.dataset import SpeechDataset, collate, screen
from toolkit.data.features import Fbank
from toolkit.data.manifest import Rejections, filter_manifest, read_manifest
from toolkit.data.sampler import BucketBatchSampler
from toolkit.data.tokenizer import load_tokenizer
from toolkit.errors import UserError

log = logging.getLogger(__name__)


def _held_out(item_id: str, fraction: float) -> bool:
    return int(hashlib.md5(item_id.encode()).hexdigest()[:8], 16) % 10_000 < fraction * 10_000


class ResumableBatchLoader(DataLoader):
    """A DataLoader over a :class:`BucketBatchSampler` whose position in the epoch is checkpointed.

    The batch order is a pure function of (seed, epoch), so resuming means skipping the batches
    already consumed; Lightning saves ``state_dict()`` and hands it back before iterating again.
    """

    def __init__(self, dataset: Dataset, batch_sampler: BucketBatchSampler, **kwargs: Any):
        super().__init__(dataset, batch_sampler=batch_sampler, collate_fn=collate, **kwargs)
        self._consumed = 0
        self._resume_at = 0

    def __iter__(self) -> Iterator[Any]:
        skip, self._resume_at = self._resume_at, 0
        self._consumed = skip
        sampler: BucketBatchSampler = self.batch_sampler
        batches = list(iter(sampler))[skip:]
        loader = DataLoader(
            self.dataset, batch_sampler=batches, collate_fn=collate, num_workers=self.num_workers,
            persistent_workers=False,
        )  # fmt: skip
        for batch in loader:
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "batches": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch_sampler.set_epoch(int(state["epoch"]))
        self._resume_at = int(state["batches"])


class CachedSpeechDataset(Dataset):
    """Every item of a :class:`SpeechDataset` computed once and kept in memory (small corpora:
    FSDD's 0.37 h is 36 MB of fbank). Items whose audio fails are dropped here, once.

    With ``speed_factors`` (e.g. ``(0.9, 1.0, 1.1)``) each item is computed once per factor, as
    Kaldi's perturbed copies are, and ``dataset[i]`` returns one of them chosen at random (Python's
    RNG, which ``seed_everything`` seeds): an epoch still holds each utterance once, and ``durations``
    are the unperturbed ones the batch sampler packs by.
    """

    def __init__(self, base: SpeechDataset, desc: str = "features", speed_factors: Sequence[float] | None = None):
        from tqdm import tqdm

        factors = tuple(speed_factors) if speed_factors else (None,)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one small FFT per utterance: threads only add contention
        copies: list[list[dict | None]] = []
        try:
            for f in factors:
                view = SpeechDataset(base.entries, base.tokenizer, base.fbank, base.cmvn, base.specaugment,
                                     speed_factors=None if f is None else (f,))  # fmt: skip
                label = desc if f is None else f"{desc} (speed {f:g})"
                # disable=None: the bar is drawn only on a terminal, never into a training log
                bar = tqdm(range(len(view)), desc=label, unit="utt", mininterval=2.0, disable=None)
                copies.append([view[i] for i in bar])
        finally:
            torch.set_num_threads(threads)
        keep = [i for i in range(len(base)) if all(c[i] is not None for c in copies)]
        self.items = [[c[i] for c in copies] for i in keep]
        self.durations = [base.durations[i] for i in keep]
        self.dropped = len(base) - len(keep)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        copies = self.items[i]
        return copies[0] if len(copies) == 1 else random.choice(copies)


class RepeatedConcatDataset(Dataset):
    """Several datasets as one training set, each one's items ``repeat`` times per epoch.

    ``parts`` is a sequence of ``(dataset, repeat)``; every dataset has ``durations`` (seconds per
    item, what the batch sampler packs by). Used to upsample a small real corpus against a large
    synthetic one without computing or caching its features more than once.
    """

    def __init__(self, parts: Sequence[tuple[Dataset, int]]):
        if not parts or any(r < 1 for _, r in parts):
            raise UserError("every training set needs a repeat count of at least 1")
        self.parts = [d for d, _ in parts]
        self.index = [(p, i) for p, (d, r) in enumerate(parts) for _ in range(r) for i in range(len(d))]
        self.durations = [self.parts[p].durations[i] for p, i in self.index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        p, i = self.index[k]
        return self.parts[p][i]


class SpeechDataModule(LightningDataModule):
    """Train/dev/test manifests (JSON Lines, see ``toolkit.data.manifest``) for CTC training.

    Utterances outside [min_duration, max_duration] or whose text the tokenizer cannot encode are
    left out, counted in one log line, and listed with their reasons in
    ``rejected_<split>_training.tsv`` beside the manifest. Batches hold at most ``max_seconds`` of audio.

    Args:
        train, dev, test: manifest paths (``test`` optional).
        tokenizer: folder of the saved tokenizer (the same one the model uses).
        sampling_rate, num_mel_bins: audio is resampled to this rate; fbank bins.
        max_seconds, max_batch_size, num_buckets: batching.
        speed_perturb: speed factors for training, e.g. [0.9, 1.0, 1.1]; None for off.
        num_workers: loader processes computing features.
        cache_features: compute every split's features once, in memory (with ``speed_perturb``, once
            per speed factor: a random copy of each training utterance per epoch).
        dev_from_train: for corpora without a dev set (FSDD): this fraction of train, chosen by a
            hash of each id (stable across runs and machines), becomes the dev set (``dev: null``).
        sorted_batches: training batches packed in length order within each bucket (least padding);
            False packs them in random order (with ``num_buckets: 1``, random batches: batch norm then
            trains on the statistics it is evaluated with; see ``BucketBatchSampler``).
        extra_train: further training manifests (e.g. speech synthesised from LM text), each seen
            once per epoch; ``train``'s utterances are seen ``train_repeat`` times.
        train_repeat: how often each utterance of ``train`` appears in an epoch (upsampling a small
            real corpus against ``extra_train``); its features are computed once.
    """

    def __init__(
        self,
        train: str,
        dev: str | None,
        tokenizer: str,
        test: str | None = None,
        sampling_rate: int = 16000,
        num_mel_bins: int = 80,
        max_seconds: float = 120.0,
        max_batch_size: int | None = 64,
        num_buckets: int = 10,
        min_duration: float = 0.1,
        max_duration: float = 30.0,
        speed_perturb: list[float] | None = None,
        num_workers: int = 0,
        seed: int = 0,
        cache_features: bool = False,
        dev_from_train: float = 0.0,
        sorted_batches: bool = True,
        extra_train: list[str] | None = None,
        train_repeat: int = 1,
    ):
        super().__init__()
        if train_repeat < 1:
            raise UserError(f"data: train_repeat is {train_repeat}; it counts how often train is seen, so >= 1")
        self.save_hyperparameters()
        self.datasets: dict[str, Dataset] = {}

    def _entries(self, split: str) -> list[dict]:
        h = self.hparams
        if split == "dev" and h.dev is None:
            if not 0.0 < h.dev_from_train < 1.0:
                raise UserError("data: give a dev manifest, or dev_from_train in (0, 1) to hold out part of train")
            return [e for e in read_manifest(h.train) if _held_out(e["id"], h.dev_from_train)]
        entries = read_manifest({"train": h.train, "dev": h.dev, "test": h.test}[split])
        if split == "train" and h.dev is None and h.dev_from_train > 0:
            entries = [e for e in entries if not _held_out(e["id"], h.dev_from_train)]
        return entries

    def _dataset(self, split: str, path: str, train: bool) -> Dataset:
        h = self.hparams
        tokenizer = load_tokenizer(h.tokenizer)
        # rejections are listed beside the manifest they come from (train's when dev is held out of it)
        parts = [(self._entries(split), path or h.train, h.train_repeat if split == "train" else 1)]
        if split == "train":
            for extra in h.extra_train or []:
                if not Path(extra).is_file():
                    raise UserError(f"data: extra_train manifest {extra} not found; make it first or drop it")
                parts.append((read_manifest(extra), extra, 1))
        fbank = Fbank(h.num_mel_bins, h.sampling_rate)
        factors = h.speed_perturb if train else None
        built = [(self._build(split, entries, where, tokenizer, fbank, factors), repeat)
                 for entries, where, repeat in parts]  # fmt: skip
        if len(built) == 1 and built[0][1] == 1:
            return built[0][0]
        return RepeatedConcatDataset(built)

    def _build(self, split: str, entries: list[dict], manifest: str, tokenizer: Any, fbank: Fbank,
               factors: Sequence[float] | None) -> Dataset:
        h = self.hparams
        kept, dropped = filter_manifest(entries, h.min_duration, h.max_duration)
        rejections = Rejections()
        for entry, reason in dropped:
            rejections.add(split, entry["id"], entry["audio_filepath"], reason)
        kept = screen(kept, tokenizer, rejections, split)
        if len(rejections):
            # one file per manifest, split and tokenizer check
            suffix = "" if manifest in (h.train, h.dev, h.test) else f"_{Path(manifest).stem}"
            where = Path(manifest).parent / f"rejected_{split}{suffix}_training.tsv"
            rejections.write(where)
            counts = ", ".join(f"{n} {kind}" for kind, n in rejections.counts().most_common())
            log.warning("%s: %d of %d utterances left out (%s); listed in %s",
                        split, len(rejections), len(entries), counts, where)  # fmt: skip
        if h.cache_features:
            return CachedSpeechDataset(SpeechDataset(kept, tokenizer, fbank), f"{split} features", factors)
        return SpeechDataset(kept, tokenizer, fbank, speed_factors=factors)

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        if "train" not in self.datasets and stage in (None, "fit"):
            self.datasets["train"] = self._dataset("train", h.train, True)
        if "dev" not in self.datasets and stage in (None, "fit", "validate"):
            self.datasets["dev"] = self._dataset("dev", h.dev or "", False)
        if "test" not in self.datasets and stage in (None, "test") and h.test:
            self.datasets["test"] = self._dataset("test", h.test, False)

    def _sampler(self, split: str, shuffle: bool) -> BucketBatchSampler:
        h = self.hparams
        world = self.trainer.world_size if self.trainer is not None else 1
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return BucketBatchSampler(
            self.datasets[split].durations, h.max_seconds, h.max_batch_size, h.num_buckets, shuffle, h.seed,
            world, rank, drop_uneven=shuffle, sorted_batches=h.sorted_batches,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return ResumableBatchLoader(
            self.datasets["train"], self._sampler("train", True), num_workers=self.hparams.num_workers
        )

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.datasets[split], batch_sampler=self._sampler(split, False), collate_fn=collate,
            num_workers=self.hparams.num_workers,
        )  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("dev")

    def test_dataloader(self) -> DataLoader:
        if "test" not in self.datasets:
            return []
        return self._eval_loader("test")
