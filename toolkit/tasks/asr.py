"""CTC speech recognition: fbank -> global CMVN -> SpecAugment (training) -> subsampling ->
recurrent encoder (any layer of toolkit.nn, built by name) -> linear -> CTC.

Batches are ``toolkit.data.dataset.SpeechBatch`` (features computed in loader workers; this module
normalises and augments them so a checkpoint carries its own CMVN and decodes raw features).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.text import CharErrorRate, WordErrorRate

import toolkit.nn as rnn
from toolkit.data.cmvn import GlobalCMVN
from toolkit.data.features import SpecAugment
from toolkit.data.tokenizer import Tokenizer
from toolkit.decode.greedy import greedy_ctc
from toolkit.nn.subsampling import build_subsampling
from toolkit.train.artefact import embed_artefact, resolve_tokenizer
from toolkit.train.optim import build_optimizer

STAGES = ("train", "val", "test")
DEFAULT_SPECAUGMENT = {"freq_masks": 2, "freq_width": 15, "time_masks": 2, "time_width": 40, "time_ratio": 0.05}


class CTCTask(LightningModule):
    """CTC acoustic model over a char or sentencepiece tokenizer (output 0 is the blank).

    Args:
        tokenizer: folder of a saved tokenizer (``toolkit.data.tokenizer``), or the tokenizer itself
            (as ``toolkit.load`` passes it); index 0 must be the blank. Stored inside the checkpoint.
        cmvn: global CMVN statistics (JSON from the stats stage); they become buffers of the model, so
            the checkpoint carries them (``None`` when loading: the weights hold them).
        feat_dim: fbank bins.
        encoder: the recurrent layer, by name: {layers} (``recur layers`` gives each one's
            equation, paper and size); built with ``toolkit.nn.build``.
        hidden_size: units per layer (and direction); ignored when ``param_budget`` is given.
        num_layers: encoder depth.
        bidirectional: each layer also reads the utterance backwards (then it cannot stream).
        dropout: between encoder layers.
        encoder_opts: the layer's own options (e.g. ``{"gamma": 2.0}`` for indrnn).
        param_budget: the width that gives the encoder about this many parameters (equal-size
            comparisons with LSTM).
        subsampling, subsampling_factor: ``"stack"`` / ``"conv"`` / ``"none"`` front end.
        specaugment: SpecAugment options (training only); ``None`` turns it off.
        optimizer, lr, weight_decay, warmup_steps, lr_milestones, lr_gamma: optimisation.
        frame_shift_s, sampling_rate: of the features the data module computes.
    """

    item_unit = "audio s"

    def __init__(
        self,
        tokenizer: str | Tokenizer,
        cmvn: str | None = None,
        feat_dim: int = 80,
        encoder: str = "res_indrnn",
        hidden_size: int = 256,
        num_layers: int = 4,
        bidirectional: bool = False,
        dropout: float = 0.1,
        encoder_opts: dict[str, Any] | None = None,
        param_budget: int | None = None,
        subsampling: Literal["stack", "conv", "none"] = "stack",
        subsampling_factor: int = 3,
        specaugment: dict[str, Any] | None = DEFAULT_SPECAUGMENT,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        warmup_steps: int = 200,
        lr_milestones: list[int] | None = None,
        lr_gamma: float = 0.1,
        frame_shift_s: float = 0.01,
        sampling_rate: int = 16000,
    ):
        super().__init__()
        # the tokenizer travels inside the checkpoint (on_save_checkpoint), never as a path
        self.save_hyperparameters(ignore=["tokenizer"])
        self.sampling_rate = sampling_rate
        self.tokenizer: Tokenizer = resolve_tokenizer(tokenizer)
        vocab = self.tokenizer.vocab_size
        self.cmvn = GlobalCMVN.load(cmvn) if cmvn else GlobalCMVN(torch.zeros(feat_dim), torch.ones(feat_dim))
        if self.cmvn.mean.numel() != feat_dim:
            raise ValueError(f"CMVN statistics in {cmvn} have {self.cmvn.mean.numel()} dims, feat_dim is {feat_dim}")
        self.specaugment = SpecAugment(**specaugment) if specaugment else None
        self.frontend = build_subsampling(subsampling, feat_dim, subsampling_factor)
        opts = dict(encoder_opts or {})
        if param_budget is not None:
            hidden_size = rnn.width_for_params(
                encoder, param_budget, self.frontend.output_size, num_layers, bidirectional=bidirectional, **opts
            )
        self.encoder = rnn.build(
            encoder, self.frontend.output_size, hidden_size, num_layers, bidirectional, dropout, **opts
        )
        self.output = nn.Linear(self.encoder.output_size, vocab)
        self.monitor, self.monitor_mode = "val/wer", "min"
        self.losses = nn.ModuleDict({f"{s}_": MeanMetric() for s in STAGES})
        self.wers = nn.ModuleDict({f"{s}_": WordErrorRate() for s in ("val", "test")})
        self.cers = nn.ModuleDict({f"{s}_": CharErrorRate() for s in ("val", "test")})
        self.register_buffer("skipped_batches", torch.zeros((), dtype=torch.long))

    # --- model ---------------------------------------------------------------------------------
    def forward(self, feats: Tensor, feat_lens: Tensor) -> tuple[Tensor, Tensor]:
        """feats (B, T, feat_dim) raw fbank, feat_lens (B,) -> (log-probs (B, T', V), lengths (B,))."""
        x = self.cmvn(feats)
        if self.training and self.specaugment is not None:
            x = torch.stack([self._augment(x[b], int(n)) for b, n in enumerate(feat_lens)])
        x, lengths = self.frontend(x, feat_lens)
        y, _ = self.encoder(x, lengths)
        logits = self.output(y)
        # CTC in at least float32 (bf16 under autocast is too coarse), float64 kept for checks
        return logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(dim=-1), lengths

    def _augment(self, x: Tensor, n: int) -> Tensor:
        out = x.clone()
        out[:n] = self.specaugment(x[:n])
        return out

    def transcribe(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        """Greedy CTC transcripts."""
        return [self.tokenizer.decode(ids) for ids in greedy_ctc(log_probs, lengths)]

    # --- steps -----------------------------------------------------------------------------------
    def count_items(self, batch) -> int:
        # audio seconds: throughput is then "seconds of speech trained per second"
        return int(round(float(batch.feat_lens.sum()) * self.hparams.frame_shift_s))

    def _world_batch(self, size: int) -> int:
        """Utterances in this step over all ranks (the CTC loss is normalised by it)."""
        if dist.is_available() and dist.is_initialized():
            t = torch.tensor([size], device=self.device)
            dist.all_reduce(t)
            return int(t)
        return size

    def _any_rank(self, flag: bool) -> bool:
        if dist.is_available() and dist.is_initialized():
            t = torch.tensor([int(flag)], device=self.device)
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
            return bool(t)
        return flag

    def step(self, batch, stage: str) -> Tensor | None:
        if len(batch) == 0:
            return None
        log_probs, lengths = self(batch.feats, batch.feat_lens)
        per_utt = F.ctc_loss(
            log_probs.transpose(0, 1), batch.tokens, lengths, batch.token_lens,
            blank=0, reduction="none", zero_infinity=False,
        )  # fmt: skip
        size = len(batch)
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        loss = per_utt.sum() * world / self._world_batch(size) if stage == "train" else per_utt.mean()
        if stage == "train":
            if self._any_rank(not torch.isfinite(loss).item()):
                # every rank skips together, so DDP's gradient all-reduce stays in step
                self.skipped_batches += 1
                self.log("train/skipped_batches", self.skipped_batches.float(), on_step=True, batch_size=size)
                return None
            self.losses["train_"](per_utt.detach().mean(), weight=size)
            self.log("train/loss", self.losses["train_"], on_step=False, on_epoch=True, batch_size=size)
            self.log("train/step_loss", per_utt.detach().mean(), on_step=True, prog_bar=True, batch_size=size)
            return loss
        finite = per_utt[torch.isfinite(per_utt)]
        if finite.numel():
            self.losses[f"{stage}_"](finite.mean(), weight=finite.numel())
        hyps = self.transcribe(log_probs, lengths)
        # score against the text the model is taught to write (e.g. lowercased, no punctuation)
        refs = [self.tokenizer.normalize(t) for t in batch.texts]
        self.wers[f"{stage}_"](hyps, refs)
        self.cers[f"{stage}_"](hyps, refs)
        self.log(f"{stage}/loss", self.losses[f"{stage}_"], on_epoch=True, batch_size=size)
        self.log(f"{stage}/wer", self.wers[f"{stage}_"], on_epoch=True, prog_bar=True, batch_size=size)
        self.log(f"{stage}/cer", self.cers[f"{stage}_"], on_epoch=True, batch_size=size)
        return None

    def training_step(self, batch, batch_idx: int) -> Tensor | None:
        return self.step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self.step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self.step(batch, "test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        embed_artefact(checkpoint, "asr", self.tokenizer)

    def configure_optimizers(self) -> dict:
        h = self.hparams
        return build_optimizer(
            self, h.optimizer, h.lr, h.weight_decay, h.lr_milestones, h.lr_gamma, h.warmup_steps
        )


# the help of `recur fit` (read from this docstring) names the layers the registry holds
if CTCTask.__doc__:  # None under python -OO
    CTCTask.__doc__ = CTCTask.__doc__.replace("{layers}", ", ".join(rnn.available()))
