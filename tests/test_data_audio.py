"""toolkit.data.audio: reading any rate and channel count, and naming what is wrong with a bad file."""

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_fixtures import bad_audio, tone

from toolkit.data.audio import BadAudio, probe_audio, read_audio


def peak_hz(wave: torch.Tensor, sr: int) -> float:
    spec = torch.fft.rfft(wave).abs()
    return float(spec.argmax()) * sr / wave.numel()


def test_stereo_is_downmixed_to_the_channel_mean(tmp_path):
    x = np.random.default_rng(0).uniform(-0.5, 0.5, size=(1600, 2)).astype(np.float32)
    sf.write(tmp_path / "s.wav", x, 16000, subtype="FLOAT")
    wave, sr = read_audio(tmp_path / "s.wav")
    assert sr == 16000 and wave.shape == (1600,)
    torch.testing.assert_close(wave, torch.from_numpy(x.mean(axis=1)))


def test_resampling_keeps_duration_and_pitch(tmp_path):
    tone(tmp_path / "t.flac", seconds=1.0, sr=8000, freq=500.0)
    wave, sr = read_audio(tmp_path / "t.flac", sampling_rate=16000)
    assert sr == 16000 and wave.numel() == 16000
    assert abs(peak_hz(wave, 16000) - 500.0) < 2.0
    native, _ = read_audio(tmp_path / "t.flac")
    assert native.numel() == 8000


def test_offset_and_duration_select_the_samples(tmp_path):
    x = (np.arange(16000) % 1000 / 1000.0 - 0.5).astype(np.float32)
    sf.write(tmp_path / "r.wav", x, 16000, subtype="FLOAT")
    wave, _ = read_audio(tmp_path / "r.wav", offset=0.25, duration=0.1)
    torch.testing.assert_close(wave, torch.from_numpy(x[4000:5600]))


def test_sphere_files_are_read(tmp_path):
    tone(tmp_path / "a.wav", 0.2, fmt="NIST")
    info = probe_audio(tmp_path / "a.wav")
    assert info.sampling_rate == 16000 and info.frames == 3200
    assert (tmp_path / "a.wav").read_bytes()[:8] == b"NIST_1A\n"


@pytest.mark.parametrize("kind", ["missing file", "empty file", "truncated", "corrupt audio data", "unreadable",
                                  "zero length", "silence only", "too long"])
def test_each_bad_file_gets_its_reason(tmp_path, kind):
    path = bad_audio(tmp_path)[kind]
    with pytest.raises(BadAudio) as err:
        probe_audio(path, max_duration=2.0)
    assert str(err.value).startswith(kind), str(err.value)


def test_good_file_passes_probe(tmp_path):
    info = probe_audio(tone(tmp_path / "ok.wav", 0.5, sr=22050, channels=2), max_duration=2.0)
    assert (info.sampling_rate, info.channels) == (22050, 2)
    assert info.duration == pytest.approx(0.5, abs=1e-4)


def test_truncated_sphere_is_caught(tmp_path):
    data = tone(tmp_path / "a.sph", 0.5, fmt="NIST").read_bytes()
    (tmp_path / "b.sph").write_bytes(data[:-2000])
    with pytest.raises(BadAudio, match="truncated"):
        probe_audio(tmp_path / "b.sph")


def test_read_audio_error_names_the_file(tmp_path):
    (tmp_path / "x.wav").write_bytes(b"RIFF0000junk")
    with pytest.raises(BadAudio, match="x.wav"):
        read_audio(tmp_path / "x.wav")
