"""Files, folders and manifests through a :class:`~toolkit.deploy.model.Recognizer`, as ``recur decode``
reads them: audio files (any rate, mono or stereo), folders searched recursively, ``.jsonl`` manifests
(their texts are the references; a same-stem ``.txt`` beside an audio file is its reference)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import UserError

from .audio import BadAudio, read_audio

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".au"}
MANIFEST_SUFFIXES = {".jsonl", ".json"}


@dataclass
class Utterance:
    id: str
    path: str
    ref: str | None = None
    offset: float = 0.0
    duration: float | None = None


@dataclass
class Result:
    id: str
    text: str
    ref: str | None
    seconds: float


def _text_beside(audio: Path) -> str | None:
    text = audio.with_suffix(".txt")
    try:
        return " ".join(text.read_text(encoding="utf-8").split()) if text.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def _manifest(path: Path) -> list[Utterance]:
    if not path.is_file():
        raise UserError(f"manifest {path} not found")
    out, base = [], path.resolve().parent
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            audio = e["audio_filepath"] if os.path.isabs(e["audio_filepath"]) else str(base / e["audio_filepath"])
            dur = float(e["duration"]) if "offset" in e else None
            out.append(Utterance(str(e["id"]), audio, e.get("text"), float(e.get("offset", 0.0)), dur))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path}:{lineno}: not a manifest line ({type(err).__name__}: {err})") from None
    return out


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Utterance]:
    """Audio files, folders (recursively) and manifests, in the order given (ids as ``recur decode``'s)."""
    out: list[Utterance] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if (p.is_file() or p.is_symlink()) and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not files:
                print(f"recur decode: warning: no audio files in {path}", file=sys.stderr)
            out += [Utterance(str(p.relative_to(path).with_suffix("")), str(p), _text_beside(p)) for p in files]
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            out += _manifest(path)
        else:
            out.append(Utterance(path.stem, str(path), _text_beside(path)))
    ids = [u.id for u in out]
    if len(set(ids)) != len(ids):
        out = [Utterance(u.path, u.path, u.ref, u.offset, u.duration) for u in out]
    return out


def transcribe_files(recognizer, utterances: Sequence[Utterance], decoder=None, blank_penalty: float = 0.0,
                     on_error: Callable[[Utterance, str], None] | None = None,
                     chunk_ms: float = 0.0) -> tuple[list[Result], float, float]:
    """Decode each utterance (one at a time); unreadable or empty audio is reported through ``on_error``
    and skipped. ``chunk_ms`` > 0 feeds each file to a :class:`~toolkit.deploy.model.Stream` in chunks of
    that many milliseconds (a streaming model only) instead of decoding it whole; the transcripts are the
    same. Returns the results, the seconds of audio and the seconds it took."""
    results: list[Result] = []
    audio_s = 0.0
    started = time.perf_counter()
    for utt in utterances:
        try:
            wave, sr = read_audio(utt.path, recognizer.sampling_rate, utt.offset, utt.duration)
        except BadAudio as err:
            if on_error:
                on_error(utt, str(err))
            continue
        if recognizer.fbank.num_frames(wave.shape[0]) == 0:
            if on_error:
                on_error(utt, f"{utt.path}: empty or shorter than one 25 ms frame")
            continue
        seconds = wave.shape[0] / sr
        audio_s += seconds
        if chunk_ms > 0:
            stream = recognizer.stream(decoder, blank_penalty)
            size = recognizer.chunk_samples(chunk_ms)
            for start in range(0, wave.shape[0], size):
                stream.accept(wave[start : start + size])
            text = stream.finish()
        else:
            text = recognizer.text(recognizer.log_probs(recognizer.fbank(wave)), decoder, blank_penalty)
        results.append(Result(utt.id, text, utt.ref, seconds))
    return results, audio_s, time.perf_counter() - started
