"""One whole CTC training step, res_indrnn against an LSTM of the same parameter count.

Each model is a ``toolkit.tasks.asr.CTCTask`` built exactly as ``recur fit`` builds it (frame-stacking
front end, ``toolkit.nn.build`` encoder sized by ``param_budget`` through ``toolkit.nn.width_for_params``,
linear output over a character vocabulary), with SpecAugment off (a per-utterance augmentation that costs
both models the same). The timed step is what a training step does: zero the gradients, forward
(CMVN -> subsampling -> encoder -> linear -> log-softmax), the CTC loss summed over the batch and divided
by its size, backward, one AdamW step (the task's own ``configure_optimizers``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from toolkit import nn as rnn

CTC_MODELS = ("res_indrnn", "lstm")
PREFIX = "ctc_step/"
# a character vocabulary: letters, apostrophe, space (plus <blank>, <unk>, <eos>)
CHARS = list("abcdefghijklmnopqrstuvwxyz' ")


@dataclass(frozen=True)
class CTCConfig:
    """One CTC step size: B utterances of T fbank frames (feat_dim bins), subsampled by ``subsampling``
    (frame stacking) before an encoder of ``num_layers`` layers holding ``param_budget`` parameters."""

    batch: int
    frames: int
    num_layers: int
    param_budget: int
    feat_dim: int = 80
    subsampling: int = 3
    bidirectional: bool = True


def gpu_ctc_grid() -> list[CTCConfig]:
    """The issue's GPU size: B=32 utterances of 10 s (1000 frames), 5 layers, 15M-parameter encoders."""
    return [CTCConfig(batch=32, frames=1000, num_layers=5, param_budget=15_000_000)]


def cpu_ctc_grid() -> list[CTCConfig]:
    """A CPU-sized step: B=16 utterances of 3 s (300 frames), 4 layers, 1.5M-parameter encoders."""
    return [CTCConfig(batch=16, frames=300, num_layers=4, param_budget=1_500_000)]


def quick_ctc_grid() -> list[CTCConfig]:
    """A tiny step that runs in well under a second (tests and smoke runs; timings meaningless)."""
    return [CTCConfig(batch=2, frames=24, num_layers=3, param_budget=150_000, feat_dim=8)]


def build_task(encoder: str, cfg: CTCConfig):
    """The ``CTCTask`` ``recur fit`` would build for ``encoder`` at this size (SpecAugment off)."""
    from toolkit.data.tokenizer import SymbolTokenizer
    from toolkit.tasks.asr import CTCTask

    with tempfile.TemporaryDirectory(prefix="recur-bench-") as folder:
        SymbolTokenizer(CHARS, kind="char").save(folder)  # CTCTask reads it at construction only
        return CTCTask(
            folder,
            feat_dim=cfg.feat_dim,
            encoder=encoder,
            num_layers=cfg.num_layers,
            bidirectional=cfg.bidirectional,
            param_budget=cfg.param_budget,
            subsampling="stack",
            subsampling_factor=cfg.subsampling,
            specaugment=None,
        )


@dataclass
class CTCBatch:
    """Random fbank features and character targets shared by both models.

    feats (B, T, feat_dim); feat_lens (B,) in [0.8 T, T], the longest = T; tokens (B, U) ids >= 3
    (no blank/unk/eos); token_lens (B,), about one character per 4 frames after subsampling (the
    rate of read speech at 10 ms frames and subsampling 3), so every target fits its input.
    """

    feats: torch.Tensor
    feat_lens: torch.Tensor
    tokens: torch.Tensor
    token_lens: torch.Tensor


def make_batch(cfg: CTCConfig, vocab: int, device: torch.device, seed: int = 0) -> CTCBatch:
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(cfg.batch, cfg.frames, cfg.feat_dim, generator=gen)
    low = max(1, int(0.8 * cfg.frames))
    feat_lens = torch.randint(low, cfg.frames + 1, (cfg.batch,), generator=gen)
    feat_lens[0] = cfg.frames
    out_lens = (feat_lens + cfg.subsampling - 1) // cfg.subsampling
    token_lens = torch.clamp(out_lens // 4, min=1)
    tokens = torch.randint(3, vocab, (cfg.batch, int(token_lens.max())), generator=gen)
    return CTCBatch(feats.to(device), feat_lens.to(device), tokens.to(device), token_lens.to(device))


def make_step(task, batch: CTCBatch, dtype: torch.dtype = torch.float32) -> Callable[[], None]:
    """A closure running one training step of ``task`` (already on the batch's device) on ``batch``.

    With a 16-bit ``dtype`` the forward runs under CUDA autocast (as Lightning's ``*-mixed`` precision
    does); the CTC loss is always float32 (the task promotes its log-probs).
    """
    task.train()
    optimizer = task.configure_optimizers()["optimizer"]
    device = batch.feats.device
    autocast = dtype != torch.float32 and device.type == "cuda"
    size = batch.feats.shape[0]

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            log_probs, lengths = task(batch.feats, batch.feat_lens)
        per_utt = F.ctc_loss(
            log_probs.transpose(0, 1), batch.tokens, lengths, batch.token_lens, blank=0, reduction="none"
        )
        (per_utt.sum() / size).backward()
        optimizer.step()

    return run


def describe(encoder: str, task, cfg: CTCConfig) -> dict:
    """The row's fixed fields: sizes, widths, parameter counts (whole model and encoder alone)."""
    return {
        "model": PREFIX + encoder,
        "case": "ctc_step",
        "steps": cfg.frames,
        "batch": cfg.batch,
        "hidden": int(task.encoder.hidden_size),  # per direction, chosen by width_for_params
        **{k: v for k, v in asdict(cfg).items() if k not in ("batch", "frames")},
        "encoder_steps": -(-cfg.frames // cfg.subsampling),
        "vocab": task.tokenizer.vocab_size,
        "params": rnn.count_params(task),
        "encoder_params": rnn.count_params(task.encoder),
    }
