"""Language models: embedding -> recurrent encoder (any toolkit.nn layer, by name) -> projection ->
softmax tied to the embedding. Stateful truncated BPTT on the batchified stream, or sentence batches.

Perplexity is exp(total NLL / total predicted tokens) over the whole set; bits per character is the
total NLL in bits over the predicted characters (for character tokenizers).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torchmetrics import SumMetric

import toolkit.nn as rnn
from toolkit.data.tokenizer import Tokenizer
from toolkit.nn.base import State, detach_state, length_mask, shared_dropout
from toolkit.nn.regularization import apply_weight_dropout, embedding_dropout
from toolkit.train.artefact import embed_artefact, resolve_tokenizer
from toolkit.train.optim import build_optimizer

STAGES = ("train", "val", "test")


class LMTask(LightningModule):
    """Recurrent language model over a saved tokenizer.

    Args:
        tokenizer: folder of a saved tokenizer (word, char, bpe, ...), or the tokenizer itself (as
            ``toolkit.load`` passes it); stored inside the checkpoint.
        encoder: the recurrent layer, by name: {layers} (``recur layers`` gives each one's
            equation, paper and size); built with ``toolkit.nn.build``.
        hidden_size: units per layer; ignored when ``param_budget`` is given.
        num_layers: encoder depth.
        encoder_opts: the layer's own options (e.g. ``{"gamma": 2.0}`` for indrnn).
        param_budget: the width that gives the encoder about this many parameters.
        embed_size: embedding width (default: hidden_size); the output layer is tied to the
            embedding when ``tie_weights`` (a linear projection bridges differing widths).
        dropout: between encoder layers; emb_dropout: whole words (Gal & Ghahramani 2016);
            in_dropout / out_dropout: one mask over time on the encoder's input / output;
            weight_dropout: DropConnect on the recurrent weights (AWD-LSTM).
        optimizer, lr, weight_decay, warmup_steps, lr_milestones, lr_gamma: optimisation.
        report_bpc: each token is one character, so report bits per character and select on it
            (default: when the tokenizer is char or byte).
    """

    item_unit = "tokens"

    def __init__(
        self,
        tokenizer: str | Tokenizer,
        encoder: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 2,
        embed_size: int | None = None,
        encoder_opts: dict[str, Any] | None = None,
        param_budget: int | None = None,
        tie_weights: bool = True,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        in_dropout: float = 0.0,
        out_dropout: float = 0.0,
        weight_dropout: float = 0.0,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        lr_milestones: list[int] | None = None,
        lr_gamma: float = 0.1,
        report_bpc: bool | None = None,
    ):
        super().__init__()
        # the tokenizer travels inside the checkpoint (on_save_checkpoint), never as a path
        self.save_hyperparameters(ignore=["tokenizer"])
        self.tokenizer: Tokenizer = resolve_tokenizer(tokenizer)
        vocab = self.tokenizer.vocab_size
        opts = dict(encoder_opts or {})
        embed = embed_size or hidden_size
        if param_budget is not None:
            hidden_size = rnn.width_for_params(encoder, param_budget, embed, num_layers, **opts)
            embed = embed_size or hidden_size
        self.embed = nn.Embedding(vocab, embed)
        self.encoder = rnn.build(encoder, embed, hidden_size, num_layers, False, dropout, **opts)
        apply_weight_dropout(self.encoder, weight_dropout)
        width = self.encoder.output_size
        self.project = nn.Linear(width, embed) if tie_weights and width != embed else None
        self.decoder = nn.Linear(embed if tie_weights else width, vocab)
        if tie_weights:
            self.decoder.weight = self.embed.weight
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        # tokens are characters: for char/byte tokenizers, or when told (PTB char is space-separated symbols)
        self.per_char = self.tokenizer.kind in ("char", "byte") if report_bpc is None else report_bpc
        self.monitor, self.monitor_mode = ("val/bpc", "min") if self.per_char else ("val/ppl", "min")
        # NaN must surface (a diverged model), not be dropped from the sum and read as perplexity 1
        self.nll = nn.ModuleDict({f"{s}_": SumMetric(nan_strategy="disable") for s in STAGES})
        self.tokens = nn.ModuleDict({f"{s}_": SumMetric() for s in STAGES})
        self._state: dict[str, State] = {}

    # --- model -----------------------------------------------------------------------------------
    def forward(self, x: Tensor, lengths: Tensor | None = None, state: State = None) -> tuple[Tensor, State]:
        """x (B, L) token ids -> (logits (B, L, V), state)."""
        h = self.hparams
        e = embedding_dropout(self.embed, x, h.emb_dropout, self.training)
        e = shared_dropout(e, h.in_dropout, self.training)
        y, state = self.encoder(e, lengths, state)
        y = shared_dropout(y, h.out_dropout, self.training)
        if self.project is not None:
            y = self.project(y)
        return self.decoder(y).float(), state

    # --- FusionLM interface (toolkit.decode.fusion_lm) --------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def initial_state(self, batch_size: int) -> State:
        """The state after the sentence start (``<eos>``), with its next-token log-probabilities."""
        start = torch.full((batch_size,), self.tokenizer.eos_id, dtype=torch.long, device=self.device)
        return self.advance(None, start)

    def next_log_probs(self, state: State) -> Tensor:
        return state[1]

    @torch.no_grad()
    def advance(self, state: State, tokens: Tensor) -> State:
        """Append one token per hypothesis: tokens (N,) -> (encoder state, log-probs (N, V))."""
        logits, enc = self(tokens.to(self.device).view(-1, 1), None, state[0] if state is not None else None)
        return (enc, logits[:, -1].log_softmax(-1))

    # --- steps -----------------------------------------------------------------------------------
    def count_items(self, batch) -> int:
        return int(batch[1].numel()) if len(batch) == 2 else int(batch[2].sum())

    def step(self, batch, stage: str) -> Tensor:
        if len(batch) == 2:  # stream window: carry the state from the previous window, detached
            x, y = batch
            lengths = None
            logits, new_state = self(x, None, self._state.get(stage))  # stored detached
            self._state[stage] = detach_state(new_state)
            mask = None
        else:
            x, y, lengths = batch
            logits, _ = self(x, lengths)
            mask = length_mask(lengths, x.shape[1])
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").view_as(y)
        if mask is not None:
            nll = nll * mask
        total, count = nll.sum(), (mask.sum() if mask is not None else torch.tensor(y.numel()))
        self.nll[f"{stage}_"](total.detach())
        self.tokens[f"{stage}_"](count.to(total.device).float())
        if stage == "train":
            self.log("train/step_nll", total.detach() / count, on_step=True, prog_bar=True, batch_size=y.shape[0])
        return total / count

    def _epoch_figures(self, stage: str) -> None:
        nll, count = self.nll[f"{stage}_"].compute(), self.tokens[f"{stage}_"].compute()
        mean = (nll / count.clamp(min=1)).item()
        self.log(f"{stage}/nll", mean)
        self.log(f"{stage}/ppl", math.exp(min(mean, 50.0)))
        if self.per_char:
            self.log(f"{stage}/bpc", mean / math.log(2))
        self.log(f"{stage}/tokens", count.item())
        self.nll[f"{stage}_"].reset()
        self.tokens[f"{stage}_"].reset()

    def on_train_epoch_start(self) -> None:
        self._state.pop("train", None)  # a new pass over the stream starts from a zero state

    def on_validation_epoch_start(self) -> None:
        self._state.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self._state.pop("test", None)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self.step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self.step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self.step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._epoch_figures("train")

    def on_validation_epoch_end(self) -> None:
        self._epoch_figures("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_figures("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        embed_artefact(checkpoint, "lm", self.tokenizer)

    def configure_optimizers(self) -> dict:
        h = self.hparams
        return build_optimizer(
            self, h.optimizer, h.lr, h.weight_decay, h.lr_milestones, h.lr_gamma, h.warmup_steps
        )


# the help of `recur fit` (read from this docstring) names the layers the registry holds
if LMTask.__doc__:  # None under python -OO
    LMTask.__doc__ = LMTask.__doc__.replace("{layers}", ", ".join(rnn.available()))
