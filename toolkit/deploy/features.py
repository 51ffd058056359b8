"""Kaldi log-mel filterbanks in numpy: what ``torchaudio.compliance.kaldi.fbank`` computes with the
toolkit's settings (``toolkit.data.features.Fbank``), without PyTorch.

Per frame of ``frame_length_ms`` every ``frame_shift_ms`` (snip_edges: only frames that fit wholly):
the wave in 16-bit range (x 32768), the frame's mean removed, pre-emphasis 0.97 (the first sample
against itself), the Povey window (a Hann window to the power 0.85), zero padding to a power of two,
the power spectrum, triangular mel filters from 20 Hz to Nyquist (mel = 1127 ln(1 + f / 700)), and the
natural log of each filter's energy floored at float32's epsilon. No dither, no energy term.
The arithmetic is float64 and the result float32: it matches torchaudio (float32 arithmetic) to
about 1e-5 relative.
"""

from __future__ import annotations

import functools
import math

import numpy as np

EPSILON = float(np.finfo(np.float32).eps)


def _mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


@functools.lru_cache(maxsize=16)
def mel_banks(num_bins: int, padded: int, sampling_rate: float, low_freq: float = 20.0,
              high_freq: float = 0.0) -> np.ndarray:
    """Triangular filters (num_bins, padded // 2 + 1) over the FFT bins, as Kaldi lays them out."""
    nyquist = 0.5 * sampling_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(f"bad mel range [{low_freq}, {high_freq}] Hz for {sampling_rate} Hz audio")
    lo, hi = float(_mel(low_freq)), float(_mel(high_freq))
    delta = (hi - lo) / (num_bins + 1)
    b = np.arange(num_bins, dtype=np.float64)[:, None]
    left, center, right = lo + b * delta, lo + (b + 1.0) * delta, lo + (b + 2.0) * delta
    mel = _mel(sampling_rate / padded * np.arange(padded // 2, dtype=np.float64))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = np.maximum(0.0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1)))  # the Nyquist bin gets no weight


@functools.lru_cache(maxsize=16)
def povey_window(size: int) -> np.ndarray:
    n = np.arange(size, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * math.pi * n / (size - 1))) ** 0.85


class Fbank:
    """``Fbank(num_mel_bins, sampling_rate)(wave (T,)) -> (frames, num_mel_bins)`` float32, the wave float
    in [-1, 1]. ``frames = 1 + (T - window) // shift`` (0 when the wave is shorter than one window)."""

    def __init__(self, num_mel_bins: int = 80, sampling_rate: int = 16000, frame_length_ms: float = 25.0,
                 frame_shift_ms: float = 10.0, preemphasis: float = 0.97, low_freq: float = 20.0,
                 high_freq: float = 0.0) -> None:
        self.num_mel_bins = int(num_mel_bins)
        self.sampling_rate = int(sampling_rate)
        self.window = int(sampling_rate * frame_length_ms / 1000)
        self.shift = int(sampling_rate * frame_shift_ms / 1000)
        self.padded = 1 << (self.window - 1).bit_length()
        self.preemphasis = preemphasis
        self.banks = mel_banks(self.num_mel_bins, self.padded, float(sampling_rate), low_freq, high_freq)

    def num_frames(self, num_samples: int) -> int:
        return 0 if num_samples < self.window else 1 + (num_samples - self.window) // self.shift

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave)
        if wave.ndim != 1:
            raise ValueError(f"Fbank expects a mono wave (T,), got shape {wave.shape}")
        m = self.num_frames(wave.shape[0])
        if m == 0:
            return np.zeros((0, self.num_mel_bins), dtype=np.float32)
        x = wave.astype(np.float64) * 32768.0
        frames = np.lib.stride_tricks.sliding_window_view(x, self.window)[:: self.shift][:m]
        frames = frames - frames.mean(axis=1, keepdims=True)
        previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
        frames = (frames - self.preemphasis * previous) * povey_window(self.window)
        spectrum = np.abs(np.fft.rfft(frames, n=self.padded, axis=1)) ** 2
        energies = spectrum @ self.banks.T
        return np.log(np.maximum(energies, EPSILON)).astype(np.float32)


class FbankStream:
    """The same frames from audio arriving in pieces: ``accept(samples) -> new frames (n, bins)``.
    Each frame depends on its own samples only, so the frames equal those of the whole wave."""

    def __init__(self, fbank: Fbank) -> None:
        self.fbank = fbank
        self.pending = np.zeros(0, dtype=np.float32)
        self.samples_seen = 0

    def accept(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples_seen += samples.shape[0]
        self.pending = np.concatenate([self.pending, samples])
        feats = self.fbank(self.pending)
        if feats.shape[0]:
            self.pending = self.pending[feats.shape[0] * self.fbank.shift :]
        return feats
