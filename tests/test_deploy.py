"""toolkit.deploy, the PyTorch-free runtime: numpy Kaldi filterbanks and resampling equal torchaudio's, token
ids read back as the tokenizers write them, streams give the offline result, and the whole runtime (import,
features, onnxruntime, greedy and beam decoding, ``python -m toolkit.deploy``) works in a Python where
importing torch, torchaudio or Lightning fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from toolkit.data.tokenizer import ByteTokenizer, train_tokenizer
from toolkit.deploy import Fbank, FbankStream, TokenTable, read_audio, read_tokens, resample, write_tokens

ROOT = Path(__file__).resolve().parents[1]


def wave(seconds=1.3, sr=16000, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 2500 * t) + 0.02 * rng.standard_normal(t.size)
    x[: sr // 10] = 0.0  # digital silence: the log floor
    return x.astype(np.float32)


@pytest.mark.parametrize(("sr", "bins"), [(16000, 80), (8000, 40), (22050, 23)])
def test_fbank_equals_torchaudio_kaldi(sr, bins):
    from toolkit.data.features import Fbank as TorchFbank

    x = wave(sr=sr)
    ref = TorchFbank(bins, sr)(torch.from_numpy(x)).numpy()
    got = Fbank(bins, sr)(x)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    assert Fbank(bins, sr)(x[:100]).shape == (0, bins)  # shorter than one window


def test_fbank_stream_equals_whole_wave():
    x, fbank = wave(), Fbank(80, 16000)
    stream, parts, pos = FbankStream(fbank), [], 0
    for size in [1, 399, 400, 161, 1600, 7] * 100:
        if pos >= x.size:
            break
        parts.append(stream.accept(x[pos : pos + size]))
        pos += size
    np.testing.assert_array_equal(np.concatenate(parts), fbank(x))


@pytest.mark.parametrize(("orig", "new"), [(44100, 16000), (8000, 16000), (48000, 8000), (22050, 16000)])
def test_resampler_follows_torchaudio(orig, new):
    from toolkit.data.audio import resample as torch_resample

    x = wave(0.7, orig)
    ref = torch_resample(torch.from_numpy(x), orig, new).numpy()
    got = resample(x, orig, new)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_read_audio_mixes_stereo_and_resamples(tmp_path):
    x = wave(0.5, 22050)
    sf.write(tmp_path / "s.flac", np.stack([x, 0.5 * x], 1), 22050)
    got, sr = read_audio(tmp_path / "s.flac", 16000)
    assert sr == 16000 and got.shape == (8000,)
    from toolkit.data.audio import read_audio as torch_read

    ref, _ = torch_read(tmp_path / "s.flac", 16000)
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["char", "word", "bpe", "byte"])
def test_token_table_decodes_like_the_tokenizer(tmp_path, kind):
    texts = ["the cat sat on the mat", "a dog ran", "hello world", "cat and dog"] * 5
    tok = ByteTokenizer() if kind == "byte" else train_tokenizer(kind, texts, vocab_size=40 if kind == "bpe" else None)
    from toolkit.export.folder import symbols_of

    write_tokens(symbols_of(tok), tmp_path / "tokens.txt")
    table = TokenTable(read_tokens(tmp_path / "tokens.txt"), kind)
    rng = np.random.default_rng(0)
    for _ in range(300):
        ids = rng.integers(0, tok.vocab_size, size=int(rng.integers(0, 12))).tolist()
        if kind == "byte":
            ids = [i for i in ids if i < 3 or i < 3 + 128]  # ASCII bytes: always whole characters
        assert table.decode(ids).strip() == tok.decode(ids).strip(), ids


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A streaming res_indrnn export at 8 kHz, a word bigram, a wave, and what PyTorch makes of it."""
    from toolkit.api import AcousticModel
    from toolkit.decode.ngram import NGramLM
    from toolkit.export import export_model
    from toolkit.tasks.asr import CTCTask

    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    root = tmp_path_factory.mktemp("deploy")
    torch.manual_seed(0)
    task = CTCTask(train_tokenizer("char", ["ab ba", "aa"]), encoder="res_indrnn", hidden_size=16, num_layers=2,
                   subsampling="stack", subsampling_factor=3, feat_dim=40, sampling_rate=8000,
                   specaugment=None).eval()  # fmt: skip
    with torch.no_grad():
        task.output.bias[0] -= 2.0
        task.cmvn.mean.fill_(8.0)
        task.cmvn.std.fill_(3.0)
    arpa = NGramLM(["ab ba", "aa ab", "ba"] * 3, order=2).write_arpa(root / "lm.arpa")
    export_model(task, root / "model", lm=str(arpa))
    x = wave(1.1, 8000, seed=4)
    sf.write(root / "a.wav", x, 8000, subtype="FLOAT")
    model = AcousticModel(task)
    expected = {
        "greedy": model.transcribe(str(root / "a.wav")).texts[0],
        "beam": model.transcribe(str(root / "a.wav"), beam=8, lm=str(arpa), lm_weight=1.0).texts[0],
    }
    return root, expected


BLOCKER = textwrap.dedent(
    """
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchaudio", "lightning", "pytorch_lightning", "torchmetrics"):
                raise ImportError(f"{name} is blocked: toolkit.deploy must not need it")
            return None

    sys.meta_path.insert(0, _NoTorch())
    """
)


def run_without_torch(tmp_path: Path, code: str | None = None, args: list[str] | None = None):
    """Python with a sitecustomize that makes importing torch, torchaudio and Lightning fail."""
    (tmp_path / "blocker").mkdir(exist_ok=True)
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "blocker"), str(ROOT)]),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    argv = [sys.executable, "-c", code] if code is not None else [sys.executable, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_the_blocker_blocks(tmp_path):
    proc = run_without_torch(tmp_path, "import torch")
    assert proc.returncode != 0 and "blocked" in proc.stderr


def test_runtime_works_without_torch(folder, tmp_path):
    root, expected = folder
    code = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from toolkit.deploy import BeamOptions, Recognizer, read_audio

        rec = Recognizer({str(root / "model")!r})
        wave, sr = read_audio({str(root / "a.wav")!r}, rec.sampling_rate)
        out = {{"greedy": rec.transcribe(wave)}}
        beam = rec.decoder(BeamOptions(beam=8, lm_weight=1.0))
        out["beam"] = rec.transcribe(wave, decoder=beam)
        stream = rec.stream(rec.decoder(BeamOptions(beam=8, lm_weight=1.0)))
        for i in range(0, wave.size, 1280):
            stream.accept((wave[i : i + 1280] * 32768).astype(np.int16))  # 160 ms of int16 samples
            stream.partial
        out["stream_beam"] = stream.finish()
        greedy = rec.stream()
        for i in range(0, wave.size, 333):
            greedy.accept(wave[i : i + 333])
        out["stream_greedy"] = greedy.finish()
        out["torch"] = [m for m in sys.modules if m.split(".")[0] in ("torch", "torchaudio", "lightning")]
        print(json.dumps(out))
        """
    )
    proc = run_without_torch(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torch"] == []
    assert out["greedy"] == expected["greedy"] and out["beam"] == expected["beam"]
    assert out["stream_greedy"] == expected["greedy"]
    # int16 input rounds the samples: the beam's words, not its scores, must survive that
    assert out["stream_beam"] == expected["beam"]
    assert expected["greedy"] and expected["beam"]  # the random model says something: the comparisons mean something


def test_command_line_runtime_without_torch(folder, tmp_path):
    root, expected = folder
    proc = run_without_torch(tmp_path, args=["-m", "toolkit.deploy", str(root / "model"), str(root / "a.wav")])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"a\t{expected['greedy']}\n"
    assert "1 decoded, 0 skipped" in proc.stderr
    # streamed in 7 ms chunks through the same runtime: the offline line
    args = ["-m", "toolkit.deploy", str(root / "model"), str(root / "a.wav"), "--chunk-ms", "7"]
    proc = run_without_torch(tmp_path, args=args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"a\t{expected['greedy']}\n"
    proc = run_without_torch(tmp_path, args=[*args[:-1], "-5"])
    assert proc.returncode == 2 and "--chunk-ms -5" in proc.stderr
    proc = run_without_torch(tmp_path, args=["-m", "toolkit.deploy", str(tmp_path), str(root / "a.wav")])
    assert proc.returncode == 2 and "not an export folder" in proc.stderr


def test_stream_of_a_whole_utterance_model_is_refused(tmp_path):
    from toolkit.deploy import Recognizer
    from toolkit.errors import UserError
    from toolkit.export import export_model
    from toolkit.tasks.asr import CTCTask

    pytest.importorskip("onnxruntime")
    task = CTCTask(train_tokenizer("char", ["ab"]), encoder="gru", hidden_size=8, num_layers=1, bidirectional=True,
                   feat_dim=40, sampling_rate=8000, specaugment=None).eval()  # fmt: skip
    export_model(task, tmp_path / "bi")
    rec = Recognizer(tmp_path / "bi")
    assert rec.form == "utterance" and isinstance(rec.transcribe(wave(0.5, 8000)), str)
    with pytest.raises(UserError, match="cannot stream"):
        rec.stream()
