"""The Python API: a trained model, loaded from an experiment folder or a checkpoint, and what it does.

    import toolkit
    asr = toolkit.load("exp/fsdd/res_indrnn")          # an AcousticModel
    for r in asr.transcribe(["a.wav", "clips/"], beam=8):
        print(r.id, r.text)
    lm = toolkit.load("exp/synth/lm/char_lstm")         # a LanguageModel
    print(lm.perplexity("text.txt"))
    stream = asr.stream(beam=8)                         # streaming: chunks of any size in, text out
    for chunk in chunks:
        stream.accept(chunk); print(stream.partial)
    print(stream.finish())

Every ``recur`` command that uses a trained model (decode, lm eval / sample) is argument parsing over
these classes; this package is the one place models are loaded.
"""

from __future__ import annotations

import os

from toolkit.decode.stream import Stream, StreamBatch, StreamRecognizer
from toolkit.tasks.asr import CTCTask

from .asr import AcousticModel, Transcription
from .decoding import DecodeOptions
from .lm import LanguageModel
from .loading import convert, load_task

__all__ = [
    "AcousticModel",
    "DecodeOptions",
    "LanguageModel",
    "Stream",
    "StreamBatch",
    "StreamRecognizer",
    "Transcription",
    "convert",
    "load",
    "load_task",
]


def load(model: str | os.PathLike, device: str = "cpu") -> AcousticModel | LanguageModel:
    """The trained model of an experiment folder (its best checkpoint) or a ``.ckpt`` file:
    an :class:`AcousticModel` (CTC) or a :class:`LanguageModel`."""
    task = load_task(model, device)
    if isinstance(task, CTCTask):
        return AcousticModel(task, source=str(model))
    return LanguageModel(task, source=str(model))
