"""Language-model data: the contiguous batchified stream (PTB convention) and sentence batches.

Stream: the whole corpus, ``<eos>`` after every line, one long id sequence cut into ``B`` contiguous
rows; a model walks the rows left to right in windows of ``bptt`` steps and carries its state from
one window to the next (stateful truncated BPTT). Sentences: each line on its own, padded batches.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence

import torch

from toolkit.data.sampler import BucketBatchSampler
from toolkit.data.text import read_lines
from toolkit.data.tokenizer import SPECIALS, Tokenizer
from toolkit.errors import ConfigError, UserError


def read_text(path: str | os.PathLike) -> list[str]:
    """Lines of an LM text file; raises UserError naming the file when it is missing or has bad bytes."""
    if not os.path.isfile(path):
        raise UserError(f"LM text {path} not found: run `recur prep` for the corpus first")
    lines, bad = read_lines(path)
    if bad:
        raise UserError(f"{path}:{bad[0][0]}: {bad[0][1]} ({len(bad)} such lines); LM text must be UTF-8")
    return lines


def read_texts(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """The lines of text files and the transcripts of speech manifests (.jsonl), one path after
    another: the sentences a language model, an n-gram or a tokenizer is trained or scored on."""
    from toolkit.data.manifest import read_manifest

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out: list[str] = []
    for path in paths:
        if str(path).endswith(".jsonl"):
            out.extend(e["text"] for e in read_manifest(path, resolve_paths=False))
        else:
            out.extend(read_text(path))
    return out


def encode_stream(lines: Iterable[str], tokenizer: Tokenizer, eos: bool = True) -> torch.Tensor:
    """All lines as one ``(N,)`` long tensor, with ``<eos>`` after each line when ``eos``."""
    ids: list[int] = []
    for line in lines:
        ids.extend(tokenizer.encode(line, eos=eos))
    return torch.tensor(ids, dtype=torch.long)


def read_byte_stream(path: str | os.PathLike) -> torch.Tensor:
    """A byte-level corpus file (enwik8) as ``(N,)`` ids of ``ByteTokenizer`` (byte + 3), no ``<eos>`` added."""
    if not os.path.isfile(path):
        raise UserError(f"byte corpus {path} not found: run `recur prep` for the corpus first")
    data = open(path, "rb").read()
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).long() + len(SPECIALS)


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut ``(N,)`` into ``(batch_size, N // batch_size)`` contiguous rows (the remainder is dropped)."""
    n = ids.numel() // batch_size
    if n < 2:
        raise UserError(f"the text has {ids.numel()} tokens, too few for {batch_size} streams")
    return ids[: n * batch_size].view(batch_size, n)


class StreamBatches:
    """Windows of the batchified stream: iterate to get ``(x, y)``, both ``(B, L)``, y = x shifted by one.

    For DDP each rank takes its own contiguous shard of the stream first (``rank`` of
    ``num_replicas``), and all shards have the same length, so every rank runs the same number of
    windows. The ``B`` rows of a rank continue from window to window, so state can be carried.
    ``len`` is the number of windows.
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, bptt: int, num_replicas: int = 1, rank: int = 0) -> None:
        if bptt < 1 or batch_size < 1:
            raise ConfigError(f"batch_size and bptt must be positive, got {batch_size} and {bptt}")
        shard = ids.numel() // num_replicas
        self.data = batchify(ids[rank * shard : (rank + 1) * shard], batch_size)
        self.bptt = bptt

    @property
    def num_tokens(self) -> int:
        """Predicted tokens per epoch (on this rank)."""
        return self.data.shape[0] * (self.data.shape[1] - 1)

    def __len__(self) -> int:
        return math.ceil((self.data.shape[1] - 1) / self.bptt)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.data.shape[1] - 1, self.bptt):
            end = min(start + self.bptt, self.data.shape[1] - 1)
            yield self.data[:, start:end], self.data[:, start + 1 : end + 1]


class SentenceBatches:
    """Sentence-level LM batches bucketed by length under a token budget.

    Iterating yields ``(x (B, L), y (B, L), lengths (B,))``: x is ``<eos> w1 .. wn`` (the end marker
    doubles as the start), y is ``w1 .. wn <eos>``, padding is 0. Empty lines are skipped.
    """

    def __init__(
        self, lines: Sequence[str], tokenizer: Tokenizer, max_tokens: int = 4000, shuffle: bool = False,
        seed: int = 0, num_replicas: int | None = None, rank: int | None = None, max_batch_size: int | None = None,
    ) -> None:
        self.sentences = [s for s in (torch.tensor(tokenizer.encode(t), dtype=torch.long) for t in lines)
                          if s.numel() > 0]
        self.eos = tokenizer.eos_id
        self.sampler = BucketBatchSampler([len(s) + 1 for s in self.sentences], max_tokens, max_batch_size,
                                          shuffle=shuffle, seed=seed, num_replicas=num_replicas, rank=rank,
                                          drop_uneven=shuffle)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        pad = torch.nn.utils.rnn.pad_sequence
        for batch in self.sampler:
            seqs = [self.sentences[i] for i in batch]
            eos = torch.tensor([self.eos])
            x = pad([torch.cat([eos, s]) for s in seqs], batch_first=True)
            y = pad([torch.cat([s, eos]) for s in seqs], batch_first=True)
            yield x, y, torch.tensor([len(s) + 1 for s in seqs])
