"""Acoustic features: Kaldi-compatible log-mel filterbanks, speed perturbation and SpecAugment.

All three work on one utterance at a time so they run inside DataLoader workers.
"""

from __future__ import annotations

import torch

from toolkit.data.audio import resample


class Fbank(torch.nn.Module):
    """Log-mel filterbank, numerically the same as Kaldi's ``compute-fbank-feats``.

    ``forward(wave (T,)) -> feats (frames, num_mel_bins)`` with 25 ms windows every 10 ms, so
    ``frames = 1 + (T - window) // shift`` (0 when the wave is shorter than one window).
    The wave is float in [-1, 1]; it is scaled to 16-bit range as Kaldi reads it.
    """

    def __init__(
        self,
        num_mel_bins: int = 80,
        sampling_rate: int = 16000,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        dither: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_mel_bins = num_mel_bins
        self.sampling_rate = sampling_rate
        self.frame_length_ms = frame_length_ms
        self.frame_shift_ms = frame_shift_ms
        self.dither = dither

    @property
    def window(self) -> int:
        return int(self.sampling_rate * self.frame_length_ms / 1000)

    @property
    def shift(self) -> int:
        return int(self.sampling_rate * self.frame_shift_ms / 1000)

    def num_frames(self, num_samples: int) -> int:
        """Frames Kaldi produces for ``num_samples`` (snip_edges=True)."""
        return 0 if num_samples < self.window else 1 + (num_samples - self.window) // self.shift

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        from torchaudio.compliance import kaldi

        if wave.dim() != 1:
            raise ValueError(f"Fbank expects a mono wave (T,), got shape {tuple(wave.shape)}")
        if wave.numel() < self.window:
            return wave.new_zeros(0, self.num_mel_bins)
        return kaldi.fbank(
            wave.unsqueeze(0) * 32768.0,
            num_mel_bins=self.num_mel_bins,
            sample_frequency=float(self.sampling_rate),
            frame_length=self.frame_length_ms,
            frame_shift=self.frame_shift_ms,
            dither=self.dither,
            energy_floor=0.0,
        )

    def extra_repr(self) -> str:
        return f"num_mel_bins={self.num_mel_bins}, sampling_rate={self.sampling_rate}"


def speed_perturb(wave: torch.Tensor, sampling_rate: int, factor: float) -> torch.Tensor:
    """Play ``wave (T,)`` ``factor`` times faster (pitch moves too, as in Kaldi's sox ``speed``).

    The result has about ``T / factor`` samples at the same rate.
    """
    if factor == 1.0:
        return wave
    return resample(wave, int(round(sampling_rate * factor)), sampling_rate)


class SpecAugment(torch.nn.Module):
    """Frequency and time masking (Park et al., 2019, "SpecAugment"), without time warping.

    ``forward(feats (T, F)) -> (T, F)``: ``freq_masks`` bands of up to ``freq_width`` bins and
    ``time_masks`` spans of up to ``min(time_width, time_ratio * T)`` frames are set to ``value``
    (0 = the mean after CMVN). Uses the global torch RNG, which Lightning seeds per worker.
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 27,
        time_masks: int = 2,
        time_width: int = 40,
        time_ratio: float = 0.05,
        value: float = 0.0,
    ) -> None:
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width, self.time_ratio = time_masks, time_width, time_ratio
        self.value = value

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        import torchaudio.functional as F

        if feats.dim() != 2:
            raise ValueError(f"SpecAugment expects (T, F), got shape {tuple(feats.shape)}")
        spec = feats.t().unsqueeze(0)  # torchaudio's (channel, freq, time)
        for _ in range(self.freq_masks):
            spec = F.mask_along_axis(spec, min(self.freq_width, spec.shape[1]), self.value, axis=1)
        width = min(self.time_width, int(self.time_ratio * spec.shape[2]))
        if width > 0:
            for _ in range(self.time_masks):
                spec = F.mask_along_axis(spec, width, self.value, axis=2)
        return spec.squeeze(0).t().contiguous()

    def extra_repr(self) -> str:
        return (f"freq_masks={self.freq_masks}, freq_width={self.freq_width}, "
                f"time_masks={self.time_masks}, time_width={self.time_width}")
