"""Word n-gram language models with interpolated absolute discounting, written as ARPA files for KenLM.

For a history h seen c(h) times followed by N1+(h) distinct words, with discount D per order
(Ney, Essen, Kneser 1994: D = n1 / (n1 + 2 n2), n_k the number of n-grams seen k times):

    p(w | h) = max(c(h, w) - D, 0) / c(h) + α(h) p(w | h'),    α(h) = D N1+(h) / c(h)

where h' drops the oldest word. In ARPA form a seen n-gram stores that interpolated probability
and α(h) is the backoff weight of h, so the file is exactly normalised.

``smoothing="kn"`` is interpolated Kneser-Ney (Kneser & Ney 1995; Chen & Goodman 1999, section 2.7):
the same formula, but below the highest order c(·) is the continuation count N1+(• g), the number of
distinct words seen before g (a lower order only speaks for histories the higher one has not seen,
so "francisco" is rare as a unigram however often "san francisco" occurs). N-grams that begin with
<s> have no word before them and keep their own counts, as in KenLM's lmplz.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from toolkit.data.io import atomic_open

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SMOOTHINGS = ("absolute", "kn")


class NGramLM:
    """Counts of orders 1..n and the discounted probabilities derived from them."""

    def __init__(
        self,
        sentences: Iterable[str],
        order: int = 3,
        unk_count: int = 1,
        smoothing: Literal["absolute", "kn"] = "absolute",
    ) -> None:
        if order < 2:
            raise ValueError("order must be at least 2 (KenLM reads bigram models and up)")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {SMOOTHINGS}, got {smoothing!r}")
        self.order = order
        self.smoothing = smoothing
        self.counts: list[Counter] = [Counter() for _ in range(order + 1)]
        for line in sentences:
            words = [BOS, *line.split(), EOS]
            for n in range(1, order + 1):
                for i in range(max(0, 1 if n == 1 else 0), len(words) - n + 1):
                    self.counts[n][tuple(words[i : i + n])] += 1
        if not self.counts[1]:
            raise ValueError("no text to train a language model on")
        self.counts[1][(UNK,)] += unk_count
        # the counts the probabilities are estimated from: raw, or Kneser-Ney continuation counts
        self.adjusted: list[Counter] = self.counts if smoothing == "absolute" else self._continuation_counts()
        self.discount = [0.0] * (order + 1)
        for n in range(1, order + 1):
            n1 = sum(1 for c in self.adjusted[n].values() if c == 1)
            n2 = sum(1 for c in self.adjusted[n].values() if c == 2)
            self.discount[n] = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
        self._history = [Counter() for _ in range(order + 1)]
        self._followers = [defaultdict(int) for _ in range(order + 1)]
        for n in range(2, order + 1):
            for gram, c in self.adjusted[n].items():
                self._history[n][gram[:-1]] += c
                self._followers[n][gram[:-1]] += 1
        self._prob_cache: dict[tuple[str, ...], float] = {}
        self._unigram_total: int | None = None

    def _continuation_counts(self) -> list[Counter]:
        """N1+(• g) for every n-gram g below the highest order (its own count if g starts with <s>)."""
        adjusted: list[Counter] = [Counter() for _ in range(self.order + 1)]
        adjusted[self.order] = self.counts[self.order]
        for n in range(1, self.order):
            for gram in self.counts[n + 1]:
                adjusted[n][gram[1:]] += 1
            for gram, c in self.counts[n].items():
                if gram[0] == BOS or gram == (UNK,):
                    adjusted[n][gram] = c
        return adjusted

    def backoff(self, history: tuple[str, ...]) -> float:
        """α(h) for a history of n-1 words (1.0 when h was never seen)."""
        n = len(history) + 1
        c = self._history[n].get(history, 0)
        return self.discount[n] * self._followers[n][history] / c if c else 1.0

    def prob(self, gram: tuple[str, ...]) -> float:
        """p(w | h) for gram = (*h, w), interpolated down to the unigram."""
        if gram in self._prob_cache:
            return self._prob_cache[gram]
        n = len(gram)
        if n == 1:
            if self._unigram_total is None:
                self._unigram_total = sum(c for g, c in self.adjusted[1].items() if g != (BOS,))
            p = self.adjusted[1].get(gram, 0) / self._unigram_total
        else:
            h = gram[:-1]
            c_h = self._history[n].get(h, 0)
            lower = self.prob(gram[1:])
            if c_h == 0:
                p = lower
            else:
                p = max(self.adjusted[n].get(gram, 0) - self.discount[n], 0.0) / c_h + self.backoff(h) * lower
        self._prob_cache[gram] = p
        return p

    def perplexity(self, sentences: Iterable[str]) -> tuple[float, int, int]:
        """Per-word perplexity of ``sentences`` (</s> counted as a word, as SRILM and KenLM do).

        Words outside the model are scored as <unk>. Returns (perplexity, words scored, of them <unk>).
        """
        log_sum, words, unknown = 0.0, 0, 0
        for line in sentences:
            tokens = [w if (w,) in self.counts[1] else UNK for w in line.split()]
            unknown += sum(1 for w in tokens if w == UNK)
            tokens = [BOS, *tokens, EOS]
            for i in range(1, len(tokens)):
                gram = tuple(tokens[max(0, i - self.order + 1) : i + 1])
                log_sum += math.log(max(self.prob(gram), 1e-99))
                words += 1
        return (math.exp(-log_sum / words) if words else math.inf), words, unknown

    def write_arpa(self, path: str | os.PathLike) -> Path:
        """Write the model in ARPA format (atomically)."""
        with atomic_open(path) as f:
            f.write("\\data\\\n")
            for n in range(1, self.order + 1):
                f.write(f"ngram {n}={len(self.counts[n]) + (1 if n == 1 else 0)}\n")
            for n in range(1, self.order + 1):
                f.write(f"\n\\{n}-grams:\n")
                grams = sorted(self.counts[n]) + ([(BOS,)] if n == 1 and (BOS,) not in self.counts[1] else [])
                for gram in grams:
                    logp = -99.0 if gram == (BOS,) else math.log10(max(self.prob(gram), 1e-99))
                    line = f"{logp:.6f}\t{' '.join(gram)}"
                    if n < self.order and gram[-1] != EOS:
                        line += f"\t{math.log10(max(self.backoff(gram), 1e-99)):.6f}"
                    f.write(line + "\n")
            f.write("\n\\end\\\n")
        return Path(path)
