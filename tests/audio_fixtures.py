"""Tiny audio files for the data tests: tones, and each kind of bad input preparation must survive."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(path: str | os.PathLike, seconds: float = 0.5, sr: int = 16000, freq: float = 440.0, channels: int = 1,
         amplitude: float = 0.3, fmt: str | None = None, subtype: str = "PCM_16", seed: int = 0) -> Path:
    """A sine plus a little noise (so no two files are identical), written with soundfile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    x = amplitude * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    data = np.stack([x * (0.5 + 0.5 * c) for c in range(channels)], axis=1) if channels > 1 else x
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    return path


def bad_audio(folder: str | os.PathLike) -> dict[str, Path]:
    """One file per failure kind, keyed by the reason's kind as ``probe_audio`` words it.

    ("too long" is a 3 s file: tests pass a smaller max_duration rather than writing hours of audio.)
    """
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    files = {"missing file": d / "missing.wav"}
    (d / "empty.wav").write_bytes(b"")
    files["empty file"] = d / "empty.wav"
    good = tone(d / "_whole.wav", 1.0).read_bytes()
    (d / "truncated.wav").write_bytes(good[: len(good) // 2])
    files["truncated"] = d / "truncated.wav"
    flac = tone(d / "_whole.flac", 1.0).read_bytes()
    (d / "corrupt.flac").write_bytes(flac[:200] + bytes(len(flac) - 200))
    files["corrupt audio data"] = d / "corrupt.flac"
    (d / "garbage.wav").write_bytes(os.urandom(3000))
    files["unreadable"] = d / "garbage.wav"
    sf.write(d / "zero.wav", np.zeros(0), 16000)
    files["zero length"] = d / "zero.wav"
    sf.write(d / "silent.wav", np.zeros(8000), 16000)
    files["silence only"] = d / "silent.wav"
    files["too long"] = tone(d / "long.wav", 3.0)
    (d / "_whole.wav").unlink()
    (d / "_whole.flac").unlink()
    return files
