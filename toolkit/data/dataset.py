"""Speech datasets: manifest entries -> (features, token ids), padded batches, loaders and CMVN stats.

Features are computed on the fly in DataLoader workers. A file that fails to decode at training
time (it changed since preparation) yields ``None``; ``collate`` drops it and counts it in the batch.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from toolkit.data.audio import BadAudio, read_audio
from toolkit.data.cmvn import GlobalCMVN
from toolkit.data.features import Fbank, SpecAugment, speed_perturb
from toolkit.data.manifest import Entry, Rejections
from toolkit.data.sampler import BucketBatchSampler
from toolkit.data.tokenizer import Tokenizer

log = logging.getLogger(__name__)


def screen(
    entries: Sequence[Entry], tokenizer: Tokenizer | None, rejections: Rejections | None = None, split: str = ""
) -> list[Entry]:
    """Entries the tokenizer can encode faithfully with at least one token; the rest are recorded."""
    kept = []
    for e in entries:
        reason = None
        if tokenizer is not None:
            bad = tokenizer.unknown(e["text"])
            if bad:
                shown = " ".join(repr(s) for s in bad[:5])
                reason = f"cannot encode ({shown}{' ...' if len(bad) > 5 else ''} not in the tokenizer)"
            elif not tokenizer.encode(e["text"]):
                reason = "empty transcript (after normalisation)"
        if reason:
            if rejections is not None:
                rejections.add(split, e["id"], e["audio_filepath"], reason)
            continue
        kept.append(e)
    return kept


class SpeechDataset(Dataset):
    """``dataset[i] -> {"id", "feats" (T, F), "tokens" (L,), "text"}`` or ``None`` if the audio fails.

    ``speed_factors`` (e.g. ``(0.9, 1.0, 1.1)``) picks one at random per item; ``specaugment`` masks
    the normalised features. Leave both off for evaluation.
    """

    def __init__(
        self,
        entries: Sequence[Entry],
        tokenizer: Tokenizer | None = None,
        fbank: Fbank | None = None,
        cmvn: GlobalCMVN | None = None,
        specaugment: SpecAugment | None = None,
        speed_factors: Sequence[float] | None = None,
    ) -> None:
        self.entries = list(entries)
        self.tokenizer = tokenizer
        self.fbank = fbank or Fbank()
        self.cmvn, self.specaugment = cmvn, specaugment
        self.speed_factors = tuple(speed_factors) if speed_factors else None

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def durations(self) -> list[float]:
        return [float(e["duration"]) for e in self.entries]

    def features(self, entry: Entry) -> torch.Tensor:
        """Log-mel features ``(T, F)`` of one entry (speed perturbation applied, no CMVN)."""
        sr = self.fbank.sampling_rate
        wave, _ = read_audio(entry["audio_filepath"], sr, float(entry.get("offset", 0.0)),
                             float(entry["duration"]) if "offset" in entry else None)
        if self.speed_factors:
            wave = speed_perturb(wave, sr, random.choice(self.speed_factors))
        return self.fbank(wave)

    def __getitem__(self, i: int) -> dict | None:
        entry = self.entries[i]
        try:
            feats = self.features(entry)
        except BadAudio as err:
            log.warning("skipping %s: %s", entry["id"], err)
            return None
        if feats.shape[0] == 0:
            log.warning("skipping %s: shorter than one analysis window", entry["id"])
            return None
        if self.cmvn is not None:
            feats = self.cmvn(feats)
        if self.specaugment is not None:
            feats = self.specaugment(feats)
        item = {"id": entry["id"], "feats": feats, "text": entry["text"]}
        if self.tokenizer is not None:
            item["tokens"] = torch.tensor(self.tokenizer.encode(entry["text"]), dtype=torch.long)
        return item


@dataclass
class SpeechBatch:
    """A padded batch. ``feats (B, T, F)``, ``feat_lens (B,)``, ``tokens (B, L)`` padded with 0
    (``<blank>``), ``token_lens (B,)``; ``dropped`` counts items whose audio failed to load."""

    ids: list[str]
    feats: torch.Tensor
    feat_lens: torch.Tensor
    tokens: torch.Tensor | None
    token_lens: torch.Tensor | None
    texts: list[str]
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str) -> SpeechBatch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return SpeechBatch(self.ids, move(self.feats), move(self.feat_lens), move(self.tokens),
                           move(self.token_lens), self.texts, self.dropped)


def collate(items: Sequence[dict | None]) -> SpeechBatch:
    """Pad a list of dataset items into a SpeechBatch (``None`` items are dropped and counted)."""
    good = [it for it in items if it is not None]
    dropped = len(items) - len(good)
    if not good:
        return SpeechBatch([], torch.zeros(0, 0, 0), torch.zeros(0, dtype=torch.long), None, None, [], dropped)
    pad = torch.nn.utils.rnn.pad_sequence
    feats = pad([it["feats"] for it in good], batch_first=True)
    feat_lens = torch.tensor([it["feats"].shape[0] for it in good], dtype=torch.long)
    tokens = token_lens = None
    if "tokens" in good[0]:
        tokens = pad([it["tokens"] for it in good], batch_first=True, padding_value=0)
        token_lens = torch.tensor([len(it["tokens"]) for it in good], dtype=torch.long)
    return SpeechBatch([it["id"] for it in good], feats, feat_lens, tokens, token_lens,
                       [it["text"] for it in good], dropped)


def speech_loader(
    dataset: SpeechDataset,
    max_seconds: float = 200.0,
    max_batch_size: int | None = None,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    num_buckets: int = 10,
    num_replicas: int | None = None,
    rank: int | None = None,
    drop_uneven: bool | None = None,
) -> DataLoader:
    """A DataLoader of SpeechBatch over duration buckets (see BucketBatchSampler).

    ``drop_uneven`` defaults to ``shuffle`` (training drops a remainder; evaluation keeps every batch once).
    """
    sampler = BucketBatchSampler(
        dataset.durations, max_seconds, max_batch_size, num_buckets, shuffle, seed, num_replicas, rank,
        shuffle if drop_uneven is None else drop_uneven,
    )
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
                      persistent_workers=num_workers > 0, pin_memory=False)


def compute_cmvn(
    entries: Sequence[Entry], fbank: Fbank | None = None, path: str | os.PathLike | None = None,
    num_workers: int = 0, progress: bool = True,
) -> GlobalCMVN:
    """Global CMVN statistics over ``entries`` (no augmentation); saved as JSON at ``path`` if given."""
    from tqdm import tqdm

    ds = SpeechDataset(entries, None, fbank)
    loader = DataLoader(ds, batch_size=None, num_workers=num_workers)
    bar = tqdm(loader, desc="cmvn", unit="utt", disable=None if progress else True)  # None: only on a terminal
    feats = (it["feats"] for it in bar if it is not None)
    stats = GlobalCMVN.from_features(feats)
    if path is not None:
        stats.save(path, {"sampling_rate": ds.fbank.sampling_rate, "num_mel_bins": ds.fbank.num_mel_bins})
    return stats
