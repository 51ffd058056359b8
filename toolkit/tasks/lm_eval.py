"""Scoring text with a trained language model: perplexity, bits per character, per-sentence scores,
out-of-vocabulary counts, optional dynamic evaluation (Krause et al. 2018), and sampling."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from toolkit.errors import UserError
from toolkit.nn.base import detach_state


@dataclass
class TextScore:
    nll: float = 0.0  # nats, over every predicted token
    tokens: int = 0
    chars: int = 0  # characters of the text (each line's characters plus one for its end)
    oov: int = 0
    sentences: list[float] = field(default_factory=list)  # NLL per line, nats

    @property
    def ppl(self) -> float:
        return math.exp(self.nll / max(self.tokens, 1))

    @property
    def bits_per_token(self) -> float:
        return self.nll / max(self.tokens, 1) / math.log(2)

    @property
    def bpc(self) -> float:
        """Bits per character of the text as written (line characters plus one per line end); for a
        character model, whose tokens are the characters, ``bits_per_token`` is the BPC."""
        return self.nll / max(self.chars, 1) / math.log(2)


def score_text(
    model,
    lines: Sequence[str],
    bptt: int = 256,
    dynamic_lr: float = 0.0,
    dynamic_decay: float = 0.0,
    progress: bool = True,
) -> TextScore:
    """Score ``lines`` as one stream (state carried across lines, as the PTB convention does).

    Every token of every line and every line end is predicted, starting from ``<eos>``:
    perplexity = exp(total NLL / total predicted tokens). With ``dynamic_lr`` > 0 the model is
    adapted to the text as it is read (Krause et al. 2018): after scoring each window it takes one
    SGD step on that window, pulled back towards the original weights by ``dynamic_decay``.
    """
    from tqdm import tqdm

    tok = model.tokenizer
    score = TextScore()
    ids, owner = [tok.eos_id], []
    for i, line in enumerate(lines):
        line_ids = tok.encode(line, eos=True)
        ids += line_ids
        owner += [i] * len(line_ids)
        unknown = set(tok.unknown(line))
        # occurrences, not distinct words: a symbol tokenizer can list them; others report each once
        score.oov += sum(s in unknown for s in tok.split(line)) if hasattr(tok, "split") else len(unknown)
        score.chars += len(tok.normalize(line)) + 1
    if len(ids) < 2:
        raise UserError("the text has nothing to score (empty file?)")
    stream = torch.tensor(ids, device=model.device).view(1, -1)
    owner_t = torch.tensor(owner)
    per_sentence = torch.zeros(len(lines), dtype=torch.float64)
    originals = [p.detach().clone() for p in model.parameters()] if dynamic_lr > 0 else None
    state = None
    total = torch.zeros((), dtype=torch.float64)
    steps = range(0, stream.shape[1] - 1, bptt)
    # disable=None: tqdm draws only on a terminal, never into a log
    for start in tqdm(steps, desc="lm eval", unit="window", disable=None if progress else True):
        x = stream[:, start : start + bptt]
        y = stream[:, start + 1 : start + 1 + x.shape[1]]
        x = x[:, : y.shape[1]]
        with torch.set_grad_enabled(dynamic_lr > 0):
            logits, state = model(x, None, state)
            nll = F.cross_entropy(logits[0], y[0], reduction="none")
        if dynamic_lr > 0:
            model.zero_grad()
            nll.mean().backward()
            with torch.no_grad():
                for p, p0 in zip(model.parameters(), originals, strict=True):
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-dynamic_lr).add_(p0 - p, alpha=dynamic_decay)
        state = detach_state(state)
        values = nll.detach().double().cpu()
        total += values.sum()
        per_sentence.index_add_(0, owner_t[start : start + values.numel()], values)
        score.tokens += values.numel()
    score.nll = float(total)
    score.sentences = per_sentence.tolist()
    return score


@torch.no_grad()
def sample(model, prompt: str = "", max_tokens: int = 100, temperature: float = 1.0, seed: int = 0) -> str:
    """Continue ``prompt`` by sampling until ``<eos>`` or ``max_tokens``."""
    if temperature <= 0:
        raise UserError("--temperature must be positive")
    g = torch.Generator().manual_seed(seed)
    tok = model.tokenizer
    state = model.initial_state(1)
    for t in tok.encode(prompt):
        state = model.advance(state, torch.tensor([t]))
    out = []
    for _ in range(max_tokens):
        probs = (model.next_log_probs(state)[0].cpu() / temperature).softmax(-1)
        t = int(torch.multinomial(probs, 1, generator=g))
        if t == tok.eos_id:
            break
        out.append(t)
        state = model.advance(state, torch.tensor([t]))
    sep = "" if tok.kind in ("char", "byte", "bpe", "unigram") else " "
    text = tok.decode(out)
    return (prompt + (sep if prompt and text else "") + text) if prompt else text


def write_sentence_scores(path: str | os.PathLike, lines: Sequence[str], score: TextScore) -> Path:
    from toolkit.data.io import write_text

    rows = [f"{nll / math.log(2):.4f}\t{line}" for nll, line in zip(score.sentences, lines, strict=True)]
    return write_text(path, "bits\ttext\n" + "\n".join(rows) + "\n")
