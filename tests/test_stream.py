"""Streaming recognition: a unidirectional model fed audio in chunks of any size gives exactly the offline
decode's frames, log-probabilities and transcript (every layer family, both subsampling kinds, greedy and
beam search with and without an LM); many streams batched give what each gives alone; a 10-minute stream
keeps its buffers bounded; `recur stream` prints what `recur decode` prints.

The models are untrained (random weights, the blank's bias lowered so that they write text): exactness
does not need training. Audio is synthetic, 8 kHz.
"""

from __future__ import annotations

import io
import math
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

import toolkit.nn as rnn
from toolkit.api import AcousticModel, DecodeOptions
from toolkit.api.decoding import build_decoder
from toolkit.cli.main import main
from toolkit.data.cmvn import GlobalCMVN
from toolkit.data.features import Fbank
from toolkit.data.tokenizer import load_tokenizer, train_tokenizer
from toolkit.decode.ngram import NGramLM
from toolkit.decode.stream import BeamDecoding, BeamFactory, StreamBatch
from toolkit.errors import UserError
from toolkit.tasks.asr import CTCTask
from toolkit.tasks.lm import LMTask
from toolkit.train.artefact import embed_artefact

SR = 8000
FEAT_DIM = 40
TEXTS = ["a bad cab", "dead beef", "face", "bead fade", "cafe bed", "ace", "fed a dace", "bee"]
# chunk sizes in samples at 8 kHz: 7 ms, 37 ms, 160 ms, 1000 ms, and the whole signal
CHUNKS = {"7ms": 56, "37ms": 296, "160ms": 1280, "1000ms": 8000, "whole": None}


def synth(seconds: float, seed: int) -> np.ndarray:
    """Audio whose frames differ: 60-200 ms segments of tones, noise bursts and near silence."""
    rng = np.random.default_rng(seed)
    n, parts = int(seconds * SR), []
    while sum(map(len, parts)) < n:
        m = int(rng.uniform(0.06, 0.2) * SR)
        kind = rng.integers(3)
        if kind == 0:
            parts.append(0.4 * np.sin(2 * np.pi * rng.uniform(100, 3000) * np.arange(m) / SR))
        else:
            parts.append((rng.uniform(0.05, 0.5) if kind == 1 else 0.003) * rng.standard_normal(m))
    return np.concatenate(parts)[:n].astype(np.float32)


def save_checkpoint(task, kind: str, path: Path) -> Path:
    """A checkpoint of a task with its random weights, loadable by toolkit.load (as training writes one)."""
    ckpt = {"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}
    embed_artefact(ckpt, kind, task.tokenizer)
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    train_tokenizer("char", TEXTS).save(root / "tok")
    train_tokenizer("word", TEXTS).save(root / "words")
    waves = [synth(s, i) for i, s in enumerate((1.2, 0.7, 1.55, 0.93))]
    test = root / "test"
    test.mkdir()
    for i, w in enumerate(waves):
        sf.write(test / f"utt{i}.wav", w, SR, subtype="FLOAT")
        (test / f"utt{i}.txt").write_text(TEXTS[i] + "\n")
    fbank = Fbank(FEAT_DIM, SR)
    GlobalCMVN.from_features([fbank(torch.from_numpy(w)) for w in waves]).save(root / "cmvn.json")
    arpa = NGramLM(TEXTS * 5, order=2).write_arpa(root / "bigram.arpa")
    torch.manual_seed(0)
    char_lm = save_checkpoint(LMTask(str(root / "tok"), encoder="lstm", hidden_size=8, num_layers=1), "lm",
                              root / "char_lm.ckpt")  # fmt: skip
    word_lm = save_checkpoint(LMTask(str(root / "words"), encoder="lstm", hidden_size=8, num_layers=1), "lm",
                              root / "word_lm.ckpt")  # fmt: skip
    return SimpleNamespace(root=root, waves=waves, test=test, arpa=arpa, char_lm=char_lm, word_lm=word_lm)


def make_task(corpus, encoder="res_indrnn", subsampling="stack", factor=3, bidirectional=False, short_memory=False):
    """An untrained model. Its output layer is scaled up and <unk>/<eos> pushed down so that it writes
    varied text; ``short_memory`` starts IndRNN's recurrent weights in U(0, 0.5) (they forget fast, so
    the output follows the audio)."""
    torch.manual_seed(0)
    opts = {"u_init": [0.0, 0.5]} if short_memory and "indrnn" in encoder else None
    task = CTCTask(
        str(corpus.root / "tok"), cmvn=str(corpus.root / "cmvn.json"), feat_dim=FEAT_DIM, encoder=encoder,
        hidden_size=16, num_layers=2, bidirectional=bidirectional, dropout=0.0, subsampling=subsampling,
        subsampling_factor=factor, specaugment=None, sampling_rate=SR, encoder_opts=opts,
    ).eval()  # fmt: skip
    with torch.no_grad():
        task.output.weight.mul_(4.0)
        task.output.bias[task.tokenizer.unk_id] -= 5.0
        task.output.bias[task.tokenizer.eos_id] -= 5.0
    return task


def offline(task, wave: np.ndarray):
    """The offline front end's raw fbank and the model's log-probabilities for the whole signal."""
    feats = Fbank(FEAT_DIM, SR)(torch.from_numpy(wave))
    with torch.no_grad():
        log_probs, _ = task(feats[None], torch.tensor([feats.shape[0]]))
    return feats, log_probs[0]


def feed(stream, wave: np.ndarray, size: int | None) -> list[str]:
    """Feed ``wave`` in chunks of ``size`` samples (None: whole); the partial after each chunk."""
    size = size or len(wave)
    return [stream.accept(wave[i : i + size]) for i in range(0, len(wave), size)]


def assert_close(got: torch.Tensor, want: torch.Tensor, what: str) -> None:
    """Equal up to float32 rounding: 1e-5, relative to the values' scale (an untrained IndRNN's
    log-probabilities can reach thousands)."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    scale = max(1.0, float(want.abs().max()))
    err = float((got - want).abs().max()) if want.numel() else 0.0
    assert err <= 1e-5 * scale, f"{what}: max difference {err:.3g} at scale {scale:.3g}"


# --- exactness ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling,factor", [("stack", 3), ("conv", 4)])
@pytest.mark.parametrize("encoder", rnn.available())
def test_frames_log_probs_and_greedy_text_equal_offline(corpus, encoder, subsampling, factor):
    """Every unidirectional layer family of the registry (all carry state across chunks)."""
    task = make_task(corpus, encoder, subsampling, factor)
    model = AcousticModel(task)
    recognizer = model.stream_recognizer()
    short = corpus.waves[1][:1200]  # 150 ms: one sample at a time
    for name, size in [*CHUNKS.items(), ("1 sample", 1)]:
        wave = short if size == 1 else corpus.waves[0]
        feats, log_probs = offline(task, wave)
        stream = recognizer.stream(keep_log_probs=True, keep_feats=True)
        partials = feed(stream, wave, size)
        text = stream.finish()
        assert_close(stream.feats, feats, f"{encoder}/{subsampling} {name}: fbank")
        assert_close(stream.log_probs, log_probs, f"{encoder}/{subsampling} {name}: log-probs")
        assert text == model.transcribe(wave, sampling_rate=SR).texts[0], (encoder, subsampling, name)
        assert all(isinstance(p, str) for p in partials) and stream.partial == text


BEAM_SETTINGS = {
    "beam": dict(beam=4),
    "beam+blank_penalty": dict(beam=8, beam_tokens=3, blank_penalty=1.5),
    "kenlm+lexicon": dict(beam=4, lm="ARPA", lm_weight=1.0, word_score=0.5),
    "recur char lm": dict(beam=4, lm="CHAR_LM", lm_weight=0.5),
    "recur word lm+lexicon": dict(beam=4, lm="WORD_LM", lm_weight=0.5, word_score=0.2),
}


@pytest.mark.parametrize("setting", list(BEAM_SETTINGS))
@pytest.mark.parametrize("encoder,subsampling,factor", [("res_indrnn", "stack", 3), ("lstm", "conv", 4)])
def test_beam_search_equals_offline(corpus, setting, encoder, subsampling, factor):
    options = dict(BEAM_SETTINGS[setting])
    paths = {"ARPA": corpus.arpa, "CHAR_LM": corpus.char_lm, "WORD_LM": corpus.word_lm}
    if "lm" in options:
        options["lm"] = str(paths[options["lm"]])
    model = AcousticModel(make_task(corpus, encoder, subsampling, factor, short_memory=True))
    recognizer = model.stream_recognizer(**options)
    wanted = model.transcribe(corpus.waves, sampling_rate=SR, **options).texts
    assert len(set(wanted)) > 1 or len(wanted[0]) > 2, f"the untrained model should write something: {wanted}"
    for i, wave in enumerate(corpus.waves[:3]):
        for name in ("7ms", "37ms", "160ms", "whole") if i == 0 else ("160ms",):
            stream = recognizer.stream()
            partials = feed(stream, wave, CHUNKS[name])
            assert all(isinstance(p, str) for p in partials)
            assert stream.finish() == wanted[i], (setting, encoder, name, i)


def test_beam_history_commits_the_best_path_exactly_on_peaky_posteriors(corpus):
    """A lattice pruned to a few frames (memory bounded) still gives the offline transcript when the
    hypotheses agree on the past, as a trained CTC model's spiky posteriors make them."""
    tok = load_tokenizer(corpus.root / "tok")
    gen = torch.Generator().manual_seed(0)
    text = " ".join(np.random.default_rng(1).choice(TEXTS, size=8))
    frames: list[int] = []
    for i in tok.encode(text):
        frames += [0] * int(torch.randint(1, 3, (1,), generator=gen)) + [i] * int(
            torch.randint(1, 3, (1,), generator=gen)
        )
    one_hot = torch.nn.functional.one_hot(torch.tensor(frames), tok.vocab_size)
    log_probs = (torch.randn(len(frames), tok.vocab_size, generator=gen) + 6 * one_hot).log_softmax(-1)
    for options in (dict(beam=4), dict(beam=8, lm=str(corpus.arpa)), dict(beam=4, lm=str(corpus.char_lm))):
        search = build_decoder(tok, DecodeOptions(**options), "cpu", corpus.root)
        wanted = search(log_probs[None], torch.tensor([len(frames)]))[0].strip()
        assert wanted.split()[:5] == text.split()[:5]
        for history in (3, 10, None):
            beam = BeamDecoding(BeamFactory(search), history)
            lattice = []
            for start in range(0, len(frames), 7):
                beam.step(log_probs[start : start + 7])
                lattice.append(beam.sizes()["lattice_frames"])
            assert beam.finish() == wanted, (options, history)
            if history is not None:
                assert max(lattice) <= 2 * history + 7 + 100  # + the lexicon's look-back to a word end


# --- many streams -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoder,subsampling,factor,options",
    [
        ("res_indrnn", "stack", 3, {}),
        ("lstm", "conv", 4, {}),
        ("clockwork", "stack", 3, {}),
        ("delay", "conv", 4, {"beam": 4, "lm": "ARPA"}),
    ],
)
def test_batched_streams_equal_each_stream_alone(corpus, encoder, subsampling, factor, options):
    if options.get("lm") == "ARPA":
        options = {**options, "lm": str(corpus.arpa)}
    recognizer = AcousticModel(make_task(corpus, encoder, subsampling, factor)).stream_recognizer(**options)
    # streams of different lengths and chunk sizes (one of 1-sample chunks: no frames most rounds),
    # starting at different rounds; a stream ends when its audio does
    plans = [(0, 0, 1280), (1, 2, 296), (2, 0, 4000), (3, 5, 37), (0, 9, 1)]
    waves = [corpus.waves[w] if size != 1 else corpus.waves[w][:400] for w, _, size in plans]
    alone = []
    for wave, (_, _, size) in zip(waves, plans, strict=True):
        stream = recognizer.stream(keep_log_probs=True)
        feed(stream, wave, size)
        alone.append((stream.finish(), stream.log_probs))
    batch = StreamBatch(recognizer)
    chunks = [[w[i : i + size] for i in range(0, len(w), size)] for w, (_, _, size) in zip(waves, plans, strict=True)]
    streams: dict[int, object] = {}
    done: dict[int, object] = {}
    rounds = 0
    while len(done) < len(plans):
        for k, (_, start, _) in enumerate(plans):
            if k in done or rounds < start:
                continue
            if k not in streams:
                streams[k] = batch.add(f"s{k}", keep_log_probs=True)
            if chunks[k]:
                batch.accept(f"s{k}", chunks[k].pop(0))
            if not chunks[k]:
                batch.finish(f"s{k}")
        for stream in batch.step():
            if stream.done:
                done[int(stream.id[1:])] = stream
        assert rounds < 5000
        rounds += 1
    assert len(batch) == 0
    for k, (text, log_probs) in enumerate(alone):
        assert done[k].text == text, (encoder, k)
        assert_close(done[k].log_probs, log_probs, f"{encoder} stream {k} batched")


def test_stream_batch_run_yields_every_source(corpus):
    recognizer = AcousticModel(make_task(corpus)).stream_recognizer()
    sources = [(f"u{i}", [w[j : j + 1280] for j in range(0, len(w), 1280)]) for i, w in enumerate(corpus.waves)]
    texts = {s.id: s.text for s in StreamBatch(recognizer).run(sources, max_streams=2)}
    alone = {f"u{i}": feed_finish(recognizer.stream(), w) for i, w in enumerate(corpus.waves)}
    assert texts == alone


def feed_finish(stream, wave) -> str:
    feed(stream, wave, 1280)
    return stream.finish()


# --- long streams ----------------------------------------------------------------------------------------


def test_ten_minute_stream_keeps_bounded_buffers_and_flat_chunk_time(corpus):
    """10 minutes in 160 ms chunks: what a stream holds between chunks never grows, nor does the time a
    chunk takes (loosely: the late chunks' median within 3x of the early ones')."""
    task = make_task(corpus)
    model = AcousticModel(task)
    greedy = model.stream("greedy")
    beam = model.stream("beam", beam=4, lm=str(corpus.arpa), beam_history=40)
    size, n_chunks = 1280, int(600 * SR / 1280)
    rng = np.random.default_rng(0)
    sizes: dict[str, list[dict]] = {"greedy": [], "beam": []}
    seconds: dict[str, list[float]] = {"greedy": [], "beam": []}
    base = np.concatenate([synth(2.0, 10 + i) for i in range(4)])
    for k in range(n_chunks):
        start = (k * size) % (len(base) - size)
        chunk = base[start : start + size] * rng.uniform(0.5, 1.5)
        for name, stream in (("greedy", greedy), ("beam", beam)):
            t0 = time.perf_counter()
            stream.accept(chunk)
            seconds[name].append(time.perf_counter() - t0)
            if k % 25 == 0 or k > n_chunks - 5:
                sizes[name].append(stream.buffer_sizes())
    window = Fbank(FEAT_DIM, SR).window
    for name in sizes:
        for s in sizes[name]:
            assert s["samples"] < window and s["stack_frames"] < 3
        assert len({s["encoder_state"] for s in sizes[name][1:]}) == 1  # fixed once the first frame is in
        tenth = n_chunks // 10
        early, late = statistics.median(seconds[name][:tenth]), statistics.median(seconds[name][-tenth:])
        assert late <= 3 * early + 2e-3, (name, early, late)
    lattice = [s["lattice_frames"] for s in sizes["beam"]]
    assert max(lattice) <= 2 * 40 + 6 + 100, lattice  # 2 x history + one chunk's frames + look-back to a word
    assert greedy.seconds == pytest.approx(n_chunks * size / SR)
    assert isinstance(greedy.finish(), str) and isinstance(beam.finish(), str)


def test_recur_lm_cache_stays_bounded(corpus):
    """A recur LM fused without a lexicon: its cache holds only the states the live hypotheses need."""
    model = AcousticModel(make_task(corpus))
    stream = model.stream(beam=4, lm=str(corpus.char_lm), beam_history=20)
    base = np.concatenate([synth(2.0, 20 + i) for i in range(3)])
    cache = []
    for k in range(int(40 * SR / 1280)):
        start = (k * 1280) % (len(base) - 1280)
        stream.accept(base[start : start + 1280])
        cache.append(stream.buffer_sizes()["lm_cache"])
    assert max(cache) <= 2 * 4 * 9 + 1, max(cache)  # the beam's states and the children scored from them
    assert stream.buffer_sizes()["lattice_frames"] <= 2 * 20 + 6


# --- refusals ---------------------------------------------------------------------------------------------


def test_bidirectional_model_is_refused_in_one_line(corpus):
    model = AcousticModel(make_task(corpus, "lstm", bidirectional=True))
    with pytest.raises(UserError) as err:
        model.stream()
    message = str(err.value)
    assert "bidirectional" in message and "`bidirectional: false`" in message and "\n" not in message


def test_bad_chunks_and_options_are_refused(corpus):
    model = AcousticModel(make_task(corpus))
    stream = model.stream()
    with pytest.raises(UserError, match="16000 Hz, but the model takes 8000 Hz"):
        stream.accept(np.zeros(160, np.float32), sampling_rate=16000)
    with pytest.raises(ValueError, match="ends mid-sample"):
        stream.accept(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="non-finite"):
        stream.accept(np.array([0.0, math.nan], np.float32))
    with pytest.raises(UserError, match="rescore"):
        model.stream(beam=4, rescore_lm=str(corpus.word_lm))
    # 16-bit PCM (bytes or int16) reads as soundfile reads it: x / 32768
    pcm = (corpus.waves[1] * 32767).astype("<i2")
    a, b = model.stream(keep_feats=True), model.stream(keep_feats=True)
    a.accept(pcm.tobytes())
    b.accept(pcm.astype(np.float32) / 32768)
    assert torch.equal(a.feats, b.feats) and a.finish() == b.finish()
    empty = model.stream()
    assert empty.finish() == "" and empty.num_frames == 0
    with pytest.raises(ValueError, match="finished"):
        empty.accept(np.zeros(10, np.float32))


# --- recur stream -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(corpus):
    return save_checkpoint(make_task(corpus, "res_indrnn"), "asr", corpus.root / "model.ckpt")


def run_cli(capsys, argv, stdin: bytes | None = None, monkeypatch=None) -> tuple[int, list[str], str]:
    capsys.readouterr()
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(stdin)))
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


@pytest.mark.parametrize("flags", [[], ["--beam", "4", "--lm", "ARPA", "--lm-weight", "1.0", "--word-score", "0.5"]])
def test_recur_stream_prints_what_recur_decode_prints(corpus, checkpoint, capsys, flags, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a lone checkpoint's ad-hoc scores go to ./decode/adhoc/
    flags = [str(corpus.arpa) if f == "ARPA" else f for f in flags]
    code, decoded, _ = run_cli(capsys, ["decode", "--model", str(checkpoint), str(corpus.test), *flags])
    wer = [line for line in decoded if "WER" in line]
    finals = [line for line in decoded if "\t" in line]
    assert code == 0 and len(finals) == len(corpus.waves) and len(wer) == 1
    for chunk_ms in ("10", "37", "160", "1000"):
        code, streamed, err = run_cli(
            capsys, ["stream", "--model", str(checkpoint), "--chunk-ms", chunk_ms, str(corpus.test), *flags]
        )
        assert code == 0
        assert [line for line in streamed if "\t" in line] == finals, chunk_ms
        # the .txt references, scored alike
        assert [line.replace("recur stream:", "recur decode:") for line in streamed if "WER" in line] == wer
        summary = err.strip().splitlines()[-1]
        assert "real-time factor" in summary and "p95" in summary and "latency" in summary
    code, together, _ = run_cli(
        capsys, ["stream", "--model", str(checkpoint), "--streams", "3", str(corpus.test), *flags]
    )
    assert [line for line in together if "\t" in line] == finals


def test_recur_stream_keeps_a_recorded_sets_transcripts_in_recogs_as_recur_decode(corpus, checkpoint, capsys, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)  # a lone checkpoint's recorded sets go to ./decode/<set>/
    _, decoded, _ = run_cli(capsys, ["decode", "--model", str(checkpoint), str(corpus.test), "--set", "a"])
    code, streamed, _ = run_cli(capsys, ["stream", "--model", str(checkpoint), str(corpus.test), "--set", "b"])
    assert code == 0 and len(decoded) == len(streamed) == 1  # the score line alone
    assert decoded[0].replace("decode: a:", "stream: b:").replace("/a", "/b") == streamed[0]
    assert streamed[0].endswith(f"transcripts in {Path('decode') / 'b' / 'recogs.txt'})")
    recogs = [(tmp_path / "decode" / s / "recogs.txt").read_text() for s in ("a", "b")]
    assert recogs[0] == recogs[1] and recogs[0].count("\thyp=") == len(corpus.waves)


def test_recur_stream_bad_inputs_are_one_line_each(corpus, checkpoint, capsys, monkeypatch, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    sf.write(folder / "a_good.wav", corpus.waves[0], SR, subtype="FLOAT")
    (folder / "b_corrupt.wav").write_bytes(b"RIFF" + bytes(100))
    sf.write(folder / "c_good.wav", corpus.waves[1], SR, subtype="FLOAT")
    code, out, err = run_cli(capsys, ["stream", "--model", str(checkpoint), str(folder)])
    assert code == 0 and [line.split("\t")[0] for line in out] == ["a_good", "c_good"]
    skipped = [line for line in err.splitlines() if line.startswith("recur stream: skipped")]
    assert len(skipped) == 1 and "b_corrupt" in skipped[0]

    # raw PCM on stdin: the same text as the file; an empty stream and one ending mid-sample say so
    pcm = (corpus.waves[1] * 32767).astype("<i2").tobytes()
    sf.write(tmp_path / "pcm.wav", np.frombuffer(pcm, "<i2"), SR, subtype="PCM_16")
    _, from_file, _ = run_cli(capsys, ["stream", "--model", str(checkpoint), str(tmp_path / "pcm.wav")])
    code, out, err = run_cli(capsys, ["stream", "--model", str(checkpoint), "-"], pcm, monkeypatch)
    assert code == 0 and out == [from_file[0].replace("pcm\t", "stdin\t")]
    code, out, err = run_cli(capsys, ["stream", "--model", str(checkpoint), "-"], pcm + b"\x01", monkeypatch)
    assert out == [from_file[0].replace("pcm\t", "stdin\t")] and "stdin: ends mid-sample" in err
    code, out, err = run_cli(capsys, ["stream", "--model", str(checkpoint), "-"], b"", monkeypatch)
    assert code == 1 and out == [] and "skipped stdin: empty" in err
    assert all(line.startswith("recur stream:") for line in err.splitlines())


def test_recur_stream_realtime_paces_and_refuses_bidirectional(corpus, checkpoint, capsys, tmp_path):
    short = tmp_path / "short.wav"
    sf.write(short, corpus.waves[1][:2400], SR, subtype="FLOAT")  # 0.3 s
    t0 = time.perf_counter()
    code, out, _ = run_cli(
        capsys, ["stream", "--model", str(checkpoint), "--realtime", "--chunk-ms", "100", str(short)]
    )
    assert code == 0 and len(out) == 1 and time.perf_counter() - t0 >= 0.2
    bi = save_checkpoint(make_task(corpus, "lstm", bidirectional=True), "asr", tmp_path / "bi.ckpt")
    code, _, err = run_cli(capsys, ["stream", "--model", str(bi), str(short)])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "bidirectional: false" in err
