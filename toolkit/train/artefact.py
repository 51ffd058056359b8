"""What a checkpoint carries besides its weights, so that a trained model works wherever it is copied.

Lightning's checkpoint holds the weights (CMVN statistics included: they are buffers) and the task's
hyper-parameters (feature settings, model config). A task adds, under ``checkpoint["recur"]``, the
tokenizer's whole contents and which task it is; nothing in it is a path.
"""

from __future__ import annotations

from typing import Any

from toolkit.data.tokenizer import Tokenizer, load_tokenizer

ARTEFACT_KEY = "recur"
ARTEFACT_FORMAT = 1
TASKS = ("asr", "lm")


def embed_artefact(checkpoint: dict[str, Any], task: str, tokenizer: Tokenizer) -> None:
    """Store ``task`` and ``tokenizer`` in ``checkpoint`` (a Lightning ``on_save_checkpoint`` hook's dict)."""
    checkpoint[ARTEFACT_KEY] = {"format": ARTEFACT_FORMAT, "task": task, "tokenizer": tokenizer.to_state()}


def resolve_tokenizer(tokenizer: str | Tokenizer) -> Tokenizer:
    """A task's ``tokenizer`` argument: a saved tokenizer folder (training) or the object itself (loading)."""
    return tokenizer if isinstance(tokenizer, Tokenizer) else load_tokenizer(tokenizer)
