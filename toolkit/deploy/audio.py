"""Audio for the runtime, through soundfile and numpy: read any file soundfile reads, mix to mono,
resample to the model's rate.

``resample`` is a windowed-sinc (Hann window, 6 zero crossings, cut-off at 99 % of the lower Nyquist)
polyphase filter: for rates reduced by their gcd to orig : new, output sample n*new + j is the dot
product of one of ``new`` filters with the input around n*orig. It is the algorithm of torchaudio's
``Resample`` (which the toolkit trains with), so it agrees with it to float32 rounding.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import soundfile as sf

from toolkit.errors import UserError


class BadAudio(UserError):
    """An unusable audio file; ``str(err)`` is the one-line reason."""


def _short(err: Exception) -> str:
    msg = str(err).replace(os.linesep, " ")
    if ":" in msg and msg.startswith("Error opening"):
        msg = msg.rsplit(":", 1)[1]
    return msg.strip().rstrip(".")


def read_audio(path: str | os.PathLike, sampling_rate: int | None = None, offset: float = 0.0,
               duration: float | None = None) -> tuple[np.ndarray, int]:
    """``path`` (from ``offset`` s for ``duration`` s) as a mono float32 wave (T,) and its rate;
    resampled to ``sampling_rate`` when given. Raises :class:`BadAudio` when it cannot be decoded."""
    path = os.fspath(path)
    try:
        f = sf.SoundFile(path)
    except (sf.SoundFileError, TypeError) as err:
        if os.path.islink(path) and not os.path.exists(path):
            raise BadAudio(f"{path}: broken symbolic link (to {os.readlink(path)})") from None
        if not os.path.isfile(path):
            raise BadAudio(f"{path}: missing file") from None
        raise BadAudio(f"{path}: unreadable ({_short(err)})") from None
    try:
        with f:
            sr = f.samplerate
            start = int(round(offset * sr))
            if start:
                f.seek(start)
            frames = -1 if duration is None else int(round(duration * sr))
            data = f.read(frames, dtype="float32", always_2d=True)
    except sf.SoundFileError as err:
        raise BadAudio(f"{path}: unreadable ({_short(err)})") from None
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if sampling_rate is not None and sampling_rate != sr:
        wave, sr = resample(wave, sr, sampling_rate), sampling_rate
    return np.ascontiguousarray(wave, dtype=np.float32), sr


@functools.lru_cache(maxsize=32)
def _kernel(orig: int, new: int, zeros: int = 6, rolloff: float = 0.99) -> tuple[np.ndarray, int]:
    """The ``new`` polyphase filters (new, 2 width + orig) for rates orig : new (coprime), and width."""
    base = min(orig, new) * rolloff
    width = math.ceil(zeros * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    phase = (np.arange(0, -new, -1) / new).astype(np.float32).astype(np.float64)[:, None]
    t = np.clip((phase + idx) * base, -zeros, zeros)
    window = np.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(t == 0, 1.0, np.sin(t) / t)
    return (sinc * window * (base / orig)).astype(np.float32), width


def resample(wave: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``wave (T,)`` from ``orig`` Hz to ``new`` Hz: ceil(T * new / orig) samples (see the module's note)."""
    wave = np.asarray(wave, dtype=np.float32)
    if orig == new:
        return wave
    g = math.gcd(int(orig), int(new))
    orig, new = int(orig) // g, int(new) // g
    kernel, width = _kernel(orig, new)
    padded = np.pad(wave, (width, width + orig))
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::orig]
    out = (frames @ kernel.T).reshape(-1)
    return np.ascontiguousarray(out[: math.ceil(new * wave.shape[0] / orig)])
