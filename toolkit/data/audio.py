"""Audio input through soundfile (WAV, FLAC, OGG, MP3, NIST SPHERE): any rate, any channel count.

``read_audio`` returns a mono float waveform at the rate the model wants; ``probe_audio`` checks a file
once at preparation time and says, in one short phrase, why it is unusable.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from toolkit.errors import UserError

if TYPE_CHECKING:  # torch is imported on use: `recur prep --help` should not pay for it
    import torch

# Peak below -80 dBFS: nothing a recogniser could use.
SILENCE_PEAK = 1e-4


class BadAudio(UserError):
    """An unusable audio file; ``str(err)`` is the one-line reason."""


# What soundfile raises for a file it cannot open: its own errors, and a TypeError for a file whose
# format needs to be given (a headerless .raw: "samplerate must be specified"). Only the opening call
# catches the TypeError; a TypeError anywhere else is a bug, not bad audio.
_OPEN_ERRORS = (sf.SoundFileError, TypeError)


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sampling_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sampling_rate


def _declared_bytes(path: str) -> tuple[int, int] | None:
    """(declared data bytes, data start) from a RIFF/WAVE or NIST SPHERE header, None for other formats.

    libsndfile quietly shortens a truncated WAV to what is there; comparing with the header catches it.
    """
    with open(path, "rb") as f:
        head = f.read(1024)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            f.seek(12)
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    return size, f.tell()
                f.seek(size + (size & 1), os.SEEK_CUR)
        if head[:8] == b"NIST_1A\n":
            fields = {}
            for line in head.decode("ascii", "replace").splitlines()[2:]:
                parts = line.split()
                if len(parts) == 3:
                    fields[parts[0]] = parts[2]
            try:
                count = int(fields["sample_count"]) * int(fields.get("channel_count", 1))
                return count * int(fields["sample_n_bytes"]), int(head[8:16])
            except (KeyError, ValueError):
                return None
    return None


def probe_audio(path: str | os.PathLike, max_duration: float = math.inf, read: bool = True) -> AudioInfo:
    """Check that ``path`` is usable audio; raise BadAudio with the reason otherwise.

    Reasons: missing file, empty file, unreadable (corrupt or unknown format), truncated, zero length,
    too long (beyond ``max_duration`` seconds, checked before decoding), silence only (``read=True``
    decodes the whole file, which also catches corrupt compressed data).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BadAudio("missing file")
    if os.path.getsize(path) == 0:
        raise BadAudio("empty file (0 bytes)")
    try:
        info = sf.info(path)
    except _OPEN_ERRORS as err:
        raise BadAudio(f"unreadable ({_short(err)})") from None
    declared = _declared_bytes(path)
    if declared is not None:
        nbytes, start = declared
        if start + nbytes > os.path.getsize(path) and nbytes != 0xFFFFFFFF:
            have = os.path.getsize(path) - start
            raise BadAudio(f"truncated (header says {nbytes} data bytes, file has {have})")
    if info.frames <= 0:
        raise BadAudio("zero length (no samples)")
    result = AudioInfo(path, int(info.samplerate), int(info.frames), int(info.channels))
    if result.duration > max_duration:
        raise BadAudio(f"too long ({result.duration:.1f} s > {max_duration:g} s)")
    if read:
        try:
            data, _ = sf.read(path, dtype="float32", always_2d=True)
        except sf.SoundFileError as err:
            raise BadAudio(f"corrupt audio data ({_short(err)})") from None
        if len(data) == 0:
            raise BadAudio("zero length (no samples)")
        if len(data) < info.frames:
            raise BadAudio(f"truncated ({len(data)} of {info.frames} frames)")
        if not np.isfinite(data).all():
            raise BadAudio("corrupt audio data (non-finite samples)")
        if float(np.abs(data).max()) < SILENCE_PEAK:
            raise BadAudio("silence only")
    return result


def _short(err: Exception) -> str:
    msg = str(err).replace(os.linesep, " ")
    if ":" in msg and msg.startswith("Error opening"):
        msg = msg.rsplit(":", 1)[1]
    return msg.strip().rstrip(".")


def read_audio(
    path: str | os.PathLike,
    sampling_rate: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[torch.Tensor, int]:
    """Read ``path`` (from ``offset`` s for ``duration`` s) as a mono float32 waveform ``(T,)``.

    Channels are averaged; the result is resampled to ``sampling_rate`` when given (returned rate).
    Raises BadAudio when the file cannot be decoded.
    """
    import torch

    path = os.fspath(path)
    try:
        f = sf.SoundFile(path)
    except _OPEN_ERRORS as err:
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
    wave = torch.from_numpy(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0])
    if sampling_rate is not None and sampling_rate != sr:
        wave = resample(wave, sr, sampling_rate)
        sr = sampling_rate
    return wave, sr


def resample(wave: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """Band-limited resampling of ``(..., T)`` from ``orig`` Hz to ``new`` Hz (torchaudio's sinc filter)."""
    if orig == new:
        return wave
    g = math.gcd(int(orig), int(new))
    return _resampler(orig // g, new // g)(wave)


@functools.lru_cache(maxsize=32)
def _resampler(orig: int, new: int) -> torch.nn.Module:
    # building the filter costs ~20x applying it (e.g. 22,050 -> 16,000 Hz), so keep one per rate pair
    import torchaudio.transforms as T

    return T.Resample(orig, new)
