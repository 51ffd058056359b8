"""Lightning datamodule for language models: the stateful batchified stream, or sentence batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from lightning.pytorch import LightningDataModule

from toolkit.data.lm import SentenceBatches, StreamBatches, encode_stream, read_texts
from toolkit.data.tokenizer import load_tokenizer


class ResumableBatches:
    """Batches of a :class:`StreamBatches` or :class:`SentenceBatches`, with the position in the epoch
    checkpointed (Lightning saves ``state_dict()`` of a training iterable and restores it before
    iterating again). It deliberately has no ``sampler`` attribute, which Lightning would take for a
    DataLoader's."""

    def __init__(self, batches: StreamBatches | SentenceBatches):
        self.stream = batches
        self._consumed = 0
        self._resume_at = 0

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.stream, "set_epoch"):
            self.stream.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.stream)

    def __iter__(self) -> Iterator[Any]:
        skip, self._resume_at = self._resume_at, 0
        self._consumed = skip
        for i, batch in enumerate(self.stream):
            if i < skip:
                continue
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_at = int(state["batches"])


class LMDataModule(LightningDataModule):
    """Text files (one sentence or line per line) -> LM batches.

    ``regime="stream"``: the PTB convention; every line followed by ``<eos>``, the corpus cut into
    ``batch_size`` contiguous rows walked in windows of ``bptt`` tokens (state carried across
    windows by the task). Each DDP rank takes its own contiguous slice. ``regime="sentence"``:
    each line scored on its own (``<eos>`` as start and end), bucketed under ``max_tokens``.

    Args:
        train, valid, test: text files, or speech manifests (.jsonl: their transcripts); ``train``
            may list several (e.g. LM text and training transcripts), read one after another;
            tokenizer: folder of the saved tokenizer.
        batch_size, bptt: stream rows and window length in training; eval_batch_size for valid/test.
        max_tokens: sentence regime token budget per batch.
    """

    def __init__(
        self,
        train: str | list[str],
        valid: str,
        tokenizer: str,
        test: str | None = None,
        regime: Literal["stream", "sentence"] = "stream",
        batch_size: int = 32,
        bptt: int = 70,
        eval_batch_size: int = 10,
        max_tokens: int = 4000,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.tokenizer = load_tokenizer(tokenizer)
        self.texts: dict[str, list[str]] = {}

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        for split, path in (("train", h.train), ("valid", h.valid), ("test", h.test)):
            if path and split not in self.texts and (stage in (None, "fit") or split != "train"):
                self.texts[split] = read_texts(path)

    def _world(self) -> tuple[int, int]:
        t = self.trainer
        return (t.world_size, t.global_rank) if t is not None else (1, 0)

    def _loader(self, split: str, train: bool):
        h = self.hparams
        world, rank = self._world()
        if h.regime == "sentence":
            batches = SentenceBatches(
                self.texts[split], self.tokenizer, h.max_tokens, shuffle=train, seed=h.seed,
                num_replicas=world, rank=rank,
            )  # fmt: skip
        else:
            ids = encode_stream(self.texts[split], self.tokenizer)
            batches = StreamBatches(ids, h.batch_size if train else h.eval_batch_size, h.bptt, world, rank)
        return ResumableBatches(batches)

    def train_dataloader(self):
        return self._loader("train", True)

    def val_dataloader(self):
        return self._loader("valid", False)

    def test_dataloader(self):
        return self._loader("test", False) if "test" in self.texts else []
