"""Loading a trained task from an experiment folder or checkpoint: the reader behind ``toolkit.load``.

A checkpoint written by this version carries its tokenizer (``toolkit.train.artefact``), so a copied
experiment folder or a lone ``.ckpt`` loads from any working directory. An older checkpoint named its
tokenizer by a path; it still loads while that path exists, and ``recur convert`` embeds the tokenizer.
"""

from __future__ import annotations

import inspect
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from toolkit.data.tokenizer import Tokenizer, load_tokenizer, tokenizer_from_state
from toolkit.errors import UserError
from toolkit.tasks.asr import CTCTask
from toolkit.tasks.lm import LMTask
from toolkit.train.artefact import ARTEFACT_KEY, embed_artefact
from toolkit.train.loading import find_checkpoint

TASK_CLASSES = {"asr": CTCTask, "lm": LMTask}
WHAT = {"asr": "an acoustic (CTC) model", "lm": "a language model"}


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict of ``path`` (a file), or a one-line ``UserError`` saying why it is unusable."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a readable checkpoint (corrupt, truncated or not a .ckpt: {first})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a recur checkpoint (no weights in it)")
    return ckpt


def task_kind(ckpt: dict[str, Any]) -> str:
    """``"asr"`` or ``"lm"``; ``"seq"`` for the sequence tasks (adding problem, MNIST), which have no API."""
    artefact = ckpt.get(ARTEFACT_KEY)
    if artefact:
        return artefact["task"]
    hparams = ckpt.get("hyper_parameters", {})
    if "feat_dim" in hparams:
        return "asr"
    if "tie_weights" in hparams:
        return "lm"
    return "seq"


def checkpoint_tokenizer(ckpt: dict[str, Any], path: Path) -> Tokenizer:
    """The tokenizer a checkpoint carries; for a checkpoint older than that, the one its path names."""
    artefact = ckpt.get(ARTEFACT_KEY)
    if artefact:
        return tokenizer_from_state(artefact["tokenizer"], str(path))
    old = ckpt.get("hyper_parameters", {}).get("tokenizer")
    if old and Path(old).exists():
        return load_tokenizer(old)
    raise UserError(
        f"{path} was written before checkpoints carried their tokenizer, and its tokenizer ({old}) is not here: "
        f"run `recur convert {path} --tokenizer TOKENIZER_DIR` once to make it self-contained"
    )


def build_task(ckpt: dict[str, Any], kind: str, tokenizer: Tokenizer):
    """The task of ``kind`` with the checkpoint's hyper-parameters and weights."""
    cls = TASK_CLASSES[kind]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    hparams = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if k in accepted}
    hparams.update(tokenizer=tokenizer)
    if "cmvn" in accepted:
        hparams["cmvn"] = None  # the statistics are buffers: the weights restore them
    task = cls(**hparams)
    task.load_state_dict(ckpt["state_dict"])
    return task


def load_task(model: str | os.PathLike, device: str = "cpu", expect: str | None = None):
    """The Lightning task (``CTCTask`` or ``LMTask``) of an experiment folder or checkpoint, in
    evaluation mode on ``device``. ``expect`` (``"asr"`` / ``"lm"``) refuses the other kind in one line."""
    path = find_checkpoint(model)
    ckpt = read_checkpoint(path)
    kind = task_kind(ckpt)
    if kind not in TASK_CLASSES:
        raise UserError(f"{path} is a sequence-task model (adding problem, MNIST); it has no decode or score API")
    if expect is not None and kind != expect:
        raise UserError(f"{model} is {WHAT[kind]}; {WHAT[expect]} is needed here")
    _check_device(device)
    return build_task(ckpt, kind, checkpoint_tokenizer(ckpt, path)).eval().to(device)


def convert(path: str | os.PathLike, tokenizer: str | os.PathLike | None = None) -> Path:
    """Rewrite an older checkpoint so it carries its tokenizer (from ``tokenizer``, else the path it names).
    The file is replaced atomically; a checkpoint that already carries one is left as it is."""
    from toolkit.data.io import atomic_open

    path = find_checkpoint(path)
    ckpt = read_checkpoint(path)
    if ckpt.get(ARTEFACT_KEY):
        return path
    kind = task_kind(ckpt)
    if kind not in TASK_CLASSES:
        raise UserError(f"{path} is a sequence-task model: it has no tokenizer to embed")
    tok = load_tokenizer(tokenizer) if tokenizer else checkpoint_tokenizer(ckpt, path)
    embed_artefact(ckpt, kind, tok)
    ckpt.get("hyper_parameters", {}).pop("tokenizer", None)
    with atomic_open(path, "wb") as f:
        torch.save(ckpt, f)
    return path


def _check_device(device: str) -> None:
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU is visible here; use --device cpu")
