"""Corpus preparation: one module per corpus turns the corpus as distributed into manifests / LM text.

Each module has ``prepare(src, out, ...)`` (idempotent, validated before anything is written,
parallel, with a progress bar and a closing summary) and, where the corpus is public,
``download(dest)`` from its official address. ``recur prep CORPUS --src PATH --out DIR`` runs them.
Each also defines ``HELP``, ``configure(parser)`` (its own options) and ``from_args(args)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

CORPORA = ("ljspeech", "librispeech", "timit", "fsdd", "folder", "kaldi", "synth", "phones",
           "ptb", "wikitext", "text8", "enwik8")


def available() -> tuple[str, ...]:
    """Names of the corpora ``recur prep`` knows."""
    return CORPORA


def get(name: str) -> ModuleType:
    """The preparation module of corpus ``name``."""
    if name not in CORPORA:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    return importlib.import_module(f"data_prep.{name}")
