"""A trained language model and what it does: ``score`` a text, its ``perplexity``, ``sample`` from it."""

from __future__ import annotations

import os
from collections.abc import Sequence

from toolkit.data.lm import read_texts
from toolkit.tasks.lm_eval import TextScore, sample, score_text


class LanguageModel:
    """A trained recurrent LM (``toolkit.load`` returns one for a language model's folder or checkpoint).

    ``task`` is the ``LMTask``; ``per_char``: its tokens are characters, so its figure is bits per
    character rather than perplexity.
    """

    def __init__(self, task, source: str | None = None) -> None:
        self.task = task
        self.source = source
        self.tokenizer = task.tokenizer
        self.per_char: bool = task.per_char

    def __repr__(self) -> str:
        return f"LanguageModel({self.source or ''}: {self.task.hparams.get('encoder', '?')} over {self.tokenizer.kind})"

    def score(
        self,
        text: str | os.PathLike | Sequence[str],
        bptt: int = 256,
        dynamic_lr: float = 0.0,
        dynamic_decay: float = 0.0,
        progress: bool = False,
    ) -> TextScore:
        """Score a text file, a manifest (its transcripts) or a list of lines as one stream; the result
        has ``ppl``, ``bits_per_token``, ``bpc``, ``oov``, ``tokens`` and per-line NLL ``sentences``
        (see ``toolkit.tasks.lm_eval.score_text``, also for dynamic evaluation)."""
        lines = read_texts(text) if isinstance(text, (str, os.PathLike)) else list(text)
        return score_text(self.task, lines, bptt, dynamic_lr, dynamic_decay, progress)

    def perplexity(self, text: str | os.PathLike | Sequence[str], bptt: int = 256) -> float:
        """exp(total NLL / predicted tokens) over the whole text."""
        return self.score(text, bptt).ppl

    def sample(self, prompt: str = "", max_tokens: int = 100, temperature: float = 1.0, seed: int = 0) -> str:
        """Continue ``prompt`` until ``<eos>`` or ``max_tokens``."""
        return sample(self.task, prompt, max_tokens, temperature, seed)
