"""Features: Kaldi fbank properties, speed perturbation, SpecAugment masks, global CMVN."""

import math

import pytest
import torch

from toolkit.data.cmvn import GlobalCMVN
from toolkit.data.features import Fbank, SpecAugment, speed_perturb
from toolkit.errors import UserError


def sine(freq, seconds=1.0, sr=16000, amp=0.3):
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def mel(hz):
    return 1127.0 * math.log(1.0 + hz / 700.0)


def test_frame_count_follows_kaldi_snip_edges():
    fb = Fbank()
    for n in (0, 399, 400, 401, 560, 16000):
        out = fb(torch.randn(n) * 0.1)
        assert out.shape == (fb.num_frames(n), 80)
        assert fb.num_frames(n) == (0 if n < 400 else 1 + (n - 400) // 160)


def test_gain_shifts_every_log_energy_equally():
    # log-mel of (g * x) = log-mel of x + 2 log g, bin by bin (no dither, no energy floor)
    x = sine(300) + 0.05 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    fb = Fbank()
    diff = fb(0.5 * x) - fb(0.25 * x)
    torch.testing.assert_close(diff, torch.full_like(diff, 2 * math.log(2.0)), atol=2e-3, rtol=0)


def test_a_tone_peaks_in_the_mel_bin_around_its_frequency():
    fb = Fbank(num_mel_bins=40)
    lo, hi = mel(20.0), mel(8000.0)
    centres = [lo + (hi - lo) * (i + 1) / 41 for i in range(40)]
    for freq in (500.0, 1500.0, 4000.0):
        feats = fb(sine(freq))
        best = int(feats.mean(0).argmax())
        nearest = min(range(40), key=lambda i: abs(centres[i] - mel(freq)))
        assert abs(best - nearest) <= 1, (freq, best, nearest)


def test_speed_perturbation_changes_length_and_pitch():
    x = sine(1000.0)
    for factor in (0.9, 1.1):
        y = speed_perturb(x, 16000, factor)
        assert abs(y.numel() - 16000 / factor) <= 2
        peak = float(torch.fft.rfft(y).abs().argmax()) * 16000 / y.numel()
        assert abs(peak - 1000.0 * factor) < 3.0
    assert speed_perturb(x, 16000, 1.0) is x


def test_specaugment_masks_whole_bands_and_spans():
    torch.manual_seed(0)
    feats = torch.randn(300, 80) + 5.0  # never 0 by chance
    aug = SpecAugment(freq_masks=2, freq_width=10, time_masks=2, time_width=40, time_ratio=0.1)
    for _ in range(20):
        out = aug(feats)
        zero = out == 0
        cols = zero.all(0)          # masked frequency bins: zero at every frame
        rows = zero.all(1)          # masked frames: zero in every bin
        assert torch.equal(zero, cols.unsqueeze(0) | rows.unsqueeze(1))
        assert int(cols.sum()) <= 20 and int(rows.sum()) <= 2 * 30
        keep = ~zero
        assert torch.equal(out[keep], feats[keep])
    assert torch.equal(SpecAugment(0, 10, 0)(feats), feats)


def test_cmvn_statistics_and_roundtrip(tmp_path):
    g = torch.Generator().manual_seed(1)
    chunks = [torch.randn(n, 4, generator=g) * torch.tensor([1.0, 2.0, 3.0, 0.5]) + 7.0 for n in (10, 0, 33, 5)]
    cmvn = GlobalCMVN.from_features(chunks)
    allf = torch.cat(chunks).double()
    torch.testing.assert_close(cmvn.mean.double(), allf.mean(0), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(cmvn.std.double(), allf.std(0, unbiased=False), rtol=1e-5, atol=1e-6)
    assert cmvn.count == 48
    normed = cmvn(torch.cat(chunks))
    torch.testing.assert_close(normed.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    cmvn.save(tmp_path / "cmvn.json")
    back = GlobalCMVN.load(tmp_path / "cmvn.json")
    torch.testing.assert_close(back(chunks[0]), cmvn(chunks[0]))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="bad.json"):
        GlobalCMVN.load(tmp_path / "bad.json")
    with pytest.raises(UserError, match="empty"):
        GlobalCMVN.from_features([torch.zeros(0, 4)])
