"""The decoding loop: utterances (files, folders, manifests, waveforms) -> a CTC model's log-probabilities
-> transcripts, with timing. The model is any module mapping raw fbank to CTC log-probabilities with
``hparams.feat_dim``, ``sampling_rate`` and ``tokenizer`` (a ``CTCTask``, an ensemble); loading one is
``toolkit.load``'s job (``toolkit.api``), not this module's.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif", ".au"}
MANIFEST_SUFFIXES = {".jsonl", ".json"}


@dataclass
class Utterance:
    """One thing to decode: an audio file (``path``, optionally a segment of it) or a waveform in memory
    (``wave`` (samples,) or (channels, samples) at ``sampling_rate``; ``path`` then only names it)."""

    id: str
    path: str
    ref: str | None = None
    offset: float = 0.0
    duration: float | None = None
    wave: Tensor | None = None
    sampling_rate: int | None = None


@dataclass
class Result:
    id: str
    text: str
    ref: str | None
    seconds: float


def expand_inputs(inputs: Sequence[str]) -> list[Utterance]:
    """Audio files, folders (searched recursively for audio) and manifests, in the order given.

    An audio file's reference is its manifest text, or a same-stem ``.txt`` file beside it. A folder
    entry that cannot be read (a broken link, no permission) is kept, so decoding reports it skipped
    with its reason rather than dropping it silently.
    """
    from toolkit.data.manifest import read_manifest

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
            for e in read_manifest(path):
                dur = float(e["duration"]) if "offset" in e else None
                out.append(Utterance(e["id"], e["audio_filepath"], e["text"], float(e.get("offset", 0.0)), dur))
        else:
            # missing or corrupt files are reported at read time
            out.append(Utterance(path.stem, str(path), _text_beside(path)))
    ids = [u.id for u in out]
    if len(set(ids)) != len(ids):
        out = [Utterance(u.path, u.path, u.ref, u.offset, u.duration) for u in out]  # fall back to full paths
    return out


def _text_beside(audio: Path) -> str | None:
    """The transcript in ``<stem>.txt`` next to an audio file (a folder of audio + text), if any."""
    text = audio.with_suffix(".txt")
    try:
        return " ".join(text.read_text(encoding="utf-8").split()) if text.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def lower_blank(log_probs: Tensor, penalty: float, blank: int = 0) -> Tensor:
    """log_probs (B, T, V) with the blank's log-probability lowered by ``penalty`` on every frame (not
    renormalised), like icefall's ``--blank-penalty``: a CTC model trained on little data is too sure
    of the blank, and decoding then deletes tokens. A new tensor; ``penalty`` 0 returns the input."""
    if not penalty:
        return log_probs
    out = log_probs.clone()
    out[..., blank] -= penalty
    return out


def transcribe(
    model,
    utterances: Iterable[Utterance],
    decoder: Callable | None = None,
    batch_seconds: float = 60.0,
    on_error: Callable[[Utterance, str], None] | None = None,
    progress: bool = True,
    blank_penalty: float = 0.0,
) -> tuple[list[Result], dict[str, float]]:
    """Decode ``utterances``; unreadable audio is reported through ``on_error`` and skipped.

    ``decoder(log_probs (B, T, V), lengths (B,)) -> list[str]``; greedy CTC when None. The model's
    log-probabilities pass through :func:`lower_blank` with ``blank_penalty`` first.
    Returns the results and timing figures (audio seconds, processing seconds, real-time factor).
    """
    from tqdm import tqdm

    from toolkit.data.audio import BadAudio
    from toolkit.data.features import Fbank

    hp = model.hparams
    fbank = Fbank(hp.feat_dim, getattr(model, "sampling_rate", 16000))
    device = next(model.parameters()).device
    utterances = list(utterances)
    results: list[Result] = []
    audio_s = 0.0
    started = time.perf_counter()
    pending: list[tuple[Utterance, torch.Tensor, float]] = []

    def flush() -> None:
        if not pending:
            return
        feats = torch.nn.utils.rnn.pad_sequence([f for _, f, _ in pending], batch_first=True).to(device)
        lengths = torch.tensor([f.shape[0] for _, f, _ in pending], device=device)
        with torch.no_grad():
            log_probs, out_lens = model(feats, lengths)
        log_probs = lower_blank(log_probs, blank_penalty, model.tokenizer.blank_id)
        texts = decoder(log_probs, out_lens) if decoder is not None else model.transcribe(log_probs, out_lens)
        results.extend(Result(u.id, t.strip(), u.ref, s) for (u, _, s), t in zip(pending, texts, strict=True))
        pending.clear()

    # disable=None: tqdm draws only on a terminal, never into a log
    for utt in tqdm(utterances, desc="decode", unit="utt", disable=None if progress else True, file=sys.stderr):
        try:
            wave, sr = _waveform(utt, fbank.sampling_rate)
        except BadAudio as err:
            (on_error or (lambda u, m: None))(utt, str(err))
            continue
        seconds = wave.numel() / sr
        feats = fbank(wave)
        if feats.shape[0] == 0 or not torch.isfinite(feats).all():
            (on_error or (lambda u, m: None))(utt, f"{utt.path}: empty or shorter than one 25 ms frame")
            continue
        audio_s += seconds
        pending.append((utt, feats, seconds))
        if sum(s for _, _, s in pending) >= batch_seconds:
            flush()
    flush()
    elapsed = time.perf_counter() - started
    return results, {"audio_s": audio_s, "elapsed_s": elapsed, "rtf": elapsed / audio_s if audio_s else 0.0}


def _waveform(utt: Utterance, rate: int) -> tuple[Tensor, int]:
    """The utterance's mono waveform at ``rate`` (read from its file, or its in-memory samples resampled)."""
    from toolkit.data.audio import BadAudio, read_audio, resample

    if utt.wave is None:
        return read_audio(utt.path, rate, utt.offset, utt.duration)
    wave = torch.as_tensor(utt.wave, dtype=torch.float32)
    if wave.dim() == 2:
        wave = wave.mean(0)  # (channels, samples) -> mono
    if wave.dim() != 1 or not utt.sampling_rate or utt.sampling_rate <= 0:
        raise BadAudio(f"{utt.id}: a waveform must be (samples,) or (channels, samples) with its sampling rate")
    return (resample(wave, utt.sampling_rate, rate) if utt.sampling_rate != rate else wave), rate
