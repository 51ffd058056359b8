"""recur export: the ONNX graph of every exportable layer family gives PyTorch's log-probabilities (whole and
chunk by chunk), the folder is complete, unexportable models are refused in one line, and an export folder
decodes (greedy, beam, KenLM) to the same transcripts as the checkpoint, through the API and recur decode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from toolkit.cli.main import main
from toolkit.data.tokenizer import train_tokenizer
from toolkit.errors import UserError
from toolkit.export import export_model, to_onnx
from toolkit.nn.norm import StepLayerNorm
from toolkit.tasks.asr import CTCTask

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

# float32: |exported - PyTorch| log-probability <= ATOL + RTOL |PyTorch's| (RTOL matters only on real
# audio, where numpy's and torchaudio's filterbanks differ by float32 rounding, ~1e-6 relative)
ATOL, RTOL = 1e-4, 1e-5
TEXTS = ["ab ba", "aa ab", "ba"]
SR = 8000


def tiny_task(encoder="res_indrnn", bidirectional=False, subsampling="stack", factor=3, seed=0, **opts) -> CTCTask:
    """A random-weight CTC model (16 units, 2 layers, 40 mel bins, 8 kHz) with random CMVN, batch-norm
    statistics and layer-norm gains and biases, so that every affine step of the graph is exercised."""
    torch.manual_seed(seed)
    task = CTCTask(train_tokenizer("char", TEXTS), encoder=encoder, hidden_size=16, num_layers=2,
                   bidirectional=bidirectional, subsampling=subsampling, subsampling_factor=factor, feat_dim=40,
                   sampling_rate=SR, specaugment=None, encoder_opts=opts or None)  # fmt: skip
    with torch.no_grad():
        task.cmvn.mean.normal_(0.0, 2.0)
        task.cmvn.std.uniform_(0.5, 2.0)
        for m in task.modules():
            if getattr(m, "running_mean", None) is not None and hasattr(m, "weight"):
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.3)
            elif isinstance(m, StepLayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.3)
        task.output.bias[0] -= 1.0  # fewer blanks: transcripts with something in them
    return task.eval()


def feats_for(task, batch=1, frames=50, seed=1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return task.cmvn.mean + task.cmvn.std * torch.randn(batch, frames, task.cmvn.mean.numel(), generator=gen)


def session(data: bytes):
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def run_chunks(sess, spec, task, feats: np.ndarray, sizes) -> np.ndarray:
    """Feed ``feats (1, T, F)`` chunk by chunk (sizes cycled), carrying state and context; then the end padding."""
    k, dim = task.frontend.factor, feats.shape[-1]
    states = {s["input"]: np.zeros((s["shape"][0], 1, s["shape"][2]), np.float32) for s in spec["states"]}
    context = np.zeros((1, 0, dim), np.float32)
    outs, pos, i = [], 0, 0
    mean = task.cmvn.mean.numpy().astype(np.float32)
    while True:
        if pos < feats.shape[1]:
            chunk = feats[:, pos : pos + sizes[i % len(sizes)]]
            pos, i = pos + chunk.shape[1], i + 1
        elif context.shape[1]:
            chunk = np.broadcast_to(mean, (1, k - context.shape[1], dim)).astype(np.float32)
        else:
            break
        if context.shape[1] + chunk.shape[1] < k:
            context = np.concatenate([context, chunk], 1)
            continue
        out = sess.run(None, {"feats": chunk, "context": context, **states})
        outs.append(out[0])
        context = out[1]
        states = {s["input"]: v for s, v in zip(spec["states"], out[2:], strict=True)}
        if pos >= feats.shape[1] and chunk.shape[1] < k and not context.shape[1]:
            break
    return np.concatenate(outs, 1)[0]


FAMILIES = [
    ("res_indrnn", {}),
    ("indrnn", {}),
    ("indrnn", {"norm": "frame"}),
    ("indrnn", {"norm": "seq", "activation": "tanh"}),
    ("irnn", {}),
    ("lstm", {}),
    ("gru", {}),
    ("rnn_tanh", {}),
    ("indrnn", {"norm": "layer"}),
    ("res_indrnn", {"norm": "layer"}),
]


def _ids(value) -> str:
    return value if isinstance(value, str) else "-".join(f"{k}={v}" for k, v in value.items())


@pytest.mark.parametrize(("encoder", "opts"), FAMILIES, ids=_ids)
def test_streaming_graph_equals_pytorch_whole_and_chunked(encoder, opts):
    task = tiny_task(encoder, **opts)
    data, spec = to_onnx(task, "stream")
    sess = session(data)
    feats = feats_for(task, frames=50)
    with torch.no_grad():
        ref = task(feats, torch.tensor([50]))[0][0].numpy()
    x = feats.numpy().astype(np.float32)
    for sizes in ([50], [1], [4, 7, 2], [3]):
        got = run_chunks(sess, spec, task, x, sizes)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL, err_msg=f"chunks {sizes}")


@pytest.mark.parametrize("encoder", ["res_indrnn", "lstm"])
def test_streaming_graph_takes_a_batch_of_streams(encoder):
    task = tiny_task(encoder)
    data, spec = to_onnx(task, "stream")
    sess, feats = session(data), feats_for(task, batch=3, frames=31)
    with torch.no_grad():
        ref = task(feats, torch.tensor([31, 31, 31]))[0].numpy()
    states = {s["input"]: np.zeros((s["shape"][0], 3, s["shape"][2]), np.float32) for s in spec["states"]}
    context, outs, x = np.zeros((3, 0, 40), np.float32), [], feats.numpy()
    mean = np.broadcast_to(task.cmvn.mean.numpy(), (3, 2, 40)).astype(np.float32)
    for chunk in [x[:, i : i + 7] for i in range(0, 31, 7)] + [mean]:  # 31 frames: 1 left, 2 rows of padding
        out = sess.run(None, {"feats": chunk, "context": context, **states})
        outs.append(out[0])
        context, states = out[1], {s["input"]: v for s, v in zip(spec["states"], out[2:], strict=True)}
    assert context.shape == (3, 0, 40)
    np.testing.assert_allclose(np.concatenate(outs, 1), ref, rtol=0, atol=ATOL)


@pytest.mark.parametrize(("encoder", "opts"), FAMILIES[:3] + FAMILIES[4:6] + FAMILIES[8:], ids=_ids)
def test_bidirectional_utterance_graph_equals_pytorch_on_a_padded_batch(encoder, opts):
    task = tiny_task(encoder, bidirectional=True, **opts)
    data, spec = to_onnx(task, "utterance")
    assert [i["name"] for i in spec["inputs"]] == ["feats", "feat_lengths"] and not spec["states"]
    feats, lengths = feats_for(task, batch=3, frames=40), torch.tensor([40, 23, 5])
    with torch.no_grad():
        ref, ref_lens = task(feats, lengths)
    got, got_lens = session(data).run(None, {"feats": feats.numpy(), "feat_lengths": lengths.numpy()})
    np.testing.assert_array_equal(got_lens, ref_lens.numpy())
    np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=ATOL)  # padded steps too


def test_conv_subsampling_exports_whole_utterance():
    task = tiny_task("lstm", subsampling="conv", factor=4)
    with pytest.raises(UserError, match="cannot stream"):
        export_model(task, "unused", form="stream")
    data, _ = to_onnx(task, "utterance")
    feats, lengths = feats_for(task, batch=2, frames=37), torch.tensor([37, 30])
    with torch.no_grad():
        ref, _ = task(feats, lengths)
    got = session(data).run(["log_probs"], {"feats": feats.numpy(), "feat_lengths": lengths.numpy()})[0]
    np.testing.assert_allclose(got, ref.numpy(), rtol=0, atol=ATOL)


@pytest.mark.parametrize("norm", ["seq", "layer"])
def test_indrnn_forms_give_the_same_log_probs(norm):
    """Scan (kept), Loop and the RNN operator with diag(u) compute one recurrence (with layer norm too:
    the RNN operator then gets LN(W x_t) through identity input weights)."""
    task = tiny_task("res_indrnn", norm=norm)
    feats = feats_for(task, frames=30).numpy().astype(np.float32)
    outs = {}
    for form in ("scan", "loop", "rnn"):
        data, spec = to_onnx(task, "stream", form)
        ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
        assert {"scan": "Scan", "loop": "Loop", "rnn": "RNN"}[form] in ops
        outs[form] = run_chunks(session(data), spec, task, feats, [5, 2])
    np.testing.assert_allclose(outs["loop"], outs["scan"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(outs["rnn"], outs["scan"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("encoder", ["indrnn", "res_indrnn"])
def test_layer_norm_is_one_layer_normalization_node_per_norm(encoder):
    """norm: layer exports as ONNX LayerNormalization (opset 17), one node per layer norm of the model:
    indrnn's of W x_t (per layer and direction), res_indrnn's pre-activation and final ones."""
    task = tiny_task(encoder, bidirectional=True, norm="layer")
    data, _ = to_onnx(task, "utterance")
    model = onnx.load_from_string(data)
    count = sum(n.op_type == "LayerNormalization" for n in model.graph.node)
    assert count == sum(isinstance(m, StepLayerNorm) for m in task.encoder.modules()) > 0
    assert {op.version for op in model.opset_import if op.domain in ("", "ai.onnx")} == {17}


def save_checkpoint(task: CTCTask, path) -> str:
    """The checkpoint ``recur fit`` would write (weights, hyper-parameters, the tokenizer inside)."""
    from toolkit.train.artefact import embed_artefact

    ckpt = {"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}
    embed_artefact(ckpt, "asr", task.tokenizer)
    torch.save(ckpt, path)
    return str(path)


def test_unexportable_family_is_a_one_line_error(tmp_path, capsys):
    ckpt = save_checkpoint(tiny_task("cfn"), tmp_path / "cfn.ckpt")
    assert main(["export", "--model", ckpt, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "a cfn encoder cannot be exported" in err
    assert "indrnn, res_indrnn, irnn, rnn_tanh, lstm, gru" in err
    with pytest.raises(UserError, match="cannot stream"):
        export_model(tiny_task("lstm", bidirectional=True), tmp_path / "bi", form="stream")


def tones(path, words=("ab", "ba", "aa"), sr=SR, seed=0):
    """A small synthesised utterance: one tone per word with short gaps, a little noise."""
    rng = np.random.default_rng(seed)
    freqs = {"ab": 300.0, "ba": 700.0, "aa": 1200.0}
    parts = []
    for w in words:
        t = np.arange(int(0.3 * sr)) / sr
        parts += [0.3 * np.sin(2 * np.pi * freqs[w] * t), np.zeros(int(0.05 * sr))]
    x = np.concatenate(parts)
    x = x + 0.01 * rng.standard_normal(x.size)
    sf.write(path, x, sr, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A res_indrnn checkpoint, a word bigram ARPA, the checkpoint's export folders (``deploy``, and
    ``deploy_lm`` with the LM and the lexicon derived from it), and three synthesised utterances at the
    model's rate with references beside them."""
    from toolkit.data.audio import read_audio
    from toolkit.data.features import Fbank
    from toolkit.decode.ngram import NGramLM

    root = tmp_path_factory.mktemp("export")
    audio = root / "audio"
    audio.mkdir()
    for i, words in enumerate([("ab", "ba"), ("aa",), ("ba", "aa", "ab")]):
        tones(audio / f"utt{i}.wav", words, seed=i)
        (audio / f"utt{i}.txt").write_text(" ".join(words))
    task = tiny_task("res_indrnn", seed=3)
    feats = torch.cat([Fbank(40, SR)(read_audio(p, SR)[0]) for p in sorted(audio.glob("*.wav"))])
    with torch.no_grad():  # CMVN of the audio, as training computes it
        task.cmvn.mean.copy_(feats.mean(0))
        task.cmvn.std.copy_(feats.std(0))
    ckpt = save_checkpoint(task, root / "model.ckpt")
    arpa = NGramLM(["ab ba", "aa ab ba", "ba aa", "ab"] * 3, order=2).write_arpa(root / "bigram.arpa")
    assert main(["export", "--model", ckpt, "--out", str(root / "deploy")]) == 0
    out = root / "deploy_lm"
    assert main(["export", "--model", ckpt, "--out", str(out), "--lm", str(arpa)]) == 0
    return root, ckpt, arpa, audio, out


def test_folder_layout_and_config(exported, capsys):
    root, ckpt, arpa, audio, out = exported
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "lexicon.txt", "lm.arpa", "model.onnx",
                                                      "tokens.txt"]  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["form"] == "stream" and config["model"]["encoder"] == "res_indrnn"
    assert config["model"]["indrnn_form"] == "scan"
    assert config["features"]["sampling_rate"] == SR and config["features"]["num_mel_bins"] == 40
    assert config["subsampling"] == {**config["subsampling"], "kind": "stack", "factor": 3}
    assert config["tokenizer"]["kind"] == "char" and config["tokenizer"]["blank_id"] == 0
    assert len(config["cmvn"]["mean"]) == 40
    assert [s["input"] for s in config["io"]["states"]] == ["state_h"]
    assert config["io"]["states"][0]["shape"] == [2, "batch", 16]
    assert config["check"]["max_abs_diff_log_probs"] < ATOL and config["check"]["chunked_max_abs_diff_log_probs"] < ATOL
    assert config["decoding"]["lm"] == "lm.arpa" and config["decoding"]["lexicon"] == "lexicon.txt"
    tokens = (out / "tokens.txt").read_text().splitlines()
    assert tokens[:4] == ["<blank> 0", "<unk> 1", "<eos> 2", "<space> 3"]
    lexicon = (out / "lexicon.txt").read_text().splitlines()
    assert "ab\ta b |" in lexicon


def decode_lines(capsys, argv) -> tuple[list[str], str]:
    assert main(["decode", *argv]) == 0
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


@pytest.mark.parametrize("options", [[], ["--beam", "8"], ["--beam", "8", "--blank-penalty", "0.5"]])
def test_recur_decode_export_folder_equals_checkpoint(exported, capsys, options, monkeypatch):
    root, ckpt, arpa, audio, out = exported
    monkeypatch.chdir(root)  # scores of a decode without --exp-dir go to ./decode
    ref_lines, ref_err = decode_lines(capsys, ["--model", ckpt, str(audio), *options])
    got_lines, got_err = decode_lines(capsys, ["--model", str(root / "deploy"), str(audio), *options])
    assert got_lines[:3] == ref_lines[:3] and len(ref_lines) == 4  # three transcripts and the WER line
    assert any(line.split("\t")[1] for line in ref_lines[:3])  # something was recognised
    assert got_lines[3].split("(")[0] == ref_lines[3].split("(")[0]  # "recur decode: <tag>: WER ..  CER .."
    assert "3 decoded, 0 skipped" in got_err and "real-time factor" in got_err
    tag = got_lines[3].split(":")[1].strip()
    assert (root / "decode" / "adhoc" / tag / "wer_summary.txt").is_file()


def test_recur_decode_export_folder_prints_a_recorded_sets_summary_only(exported, capsys, tmp_path):
    """As with a checkpoint: with --set and references, the transcripts go to recogs.txt, not stdout."""
    root, ckpt, arpa, audio, out = exported
    exp = tmp_path / "exp"
    args = ["--model", str(root / "deploy"), str(audio), "--set", "dev", "--exp-dir", str(exp)]
    lines, _ = decode_lines(capsys, args)
    recogs = exp / "decode" / "dev" / "recogs.txt"
    assert len(lines) == 1 and lines[0].startswith("recur decode: dev: WER ") and f"transcripts in {recogs}" in lines[0]
    assert sorted(line.split("\t")[0] for line in recogs.read_text().splitlines() if "\thyp=" in line) == [
        "utt0", "utt1", "utt2"]  # fmt: skip


def test_kenlm_beam_search_equals_checkpoint(exported, capsys, monkeypatch):
    """With a beam, a folder's own LM and lexicon are used: against the checkpoint decoded with the same ARPA
    (its lexicon derived alike); and an ARPA given to recur decode with the folder without one."""
    root, ckpt, arpa, audio, out = exported
    monkeypatch.chdir(root)
    beam = ["--beam", "8", "--lm-weight", "1.0", "--word-score", "0.5"]
    ref_lines, _ = decode_lines(capsys, ["--model", ckpt, str(audio), "--lm", str(arpa), *beam])
    got_lines, _ = decode_lines(capsys, ["--model", str(out), str(audio), *beam])
    assert got_lines[:3] == ref_lines[:3]
    assert all(set(line.split("\t")[1].split()) <= {"ab", "ba", "aa"} for line in got_lines[:3])
    assert "_beam8_kenlm" in got_lines[3]
    given, _ = decode_lines(capsys, ["--model", str(root / "deploy"), str(audio), "--lm", str(arpa), *beam])
    assert given[:3] == ref_lines[:3]


def test_api_transcripts_and_log_probs_equal_on_real_audio(exported):
    """Recognizer (numpy features, onnxruntime) against AcousticModel.transcribe (torchaudio, PyTorch):
    log-probabilities within ATOL, transcripts equal greedy and with the beam, offline and streaming."""
    from toolkit.api import DecodeOptions, load
    from toolkit.data.features import Fbank
    from toolkit.deploy import BeamOptions, Recognizer, read_audio

    root, ckpt, arpa, audio, out = exported
    model, rec = load(ckpt), Recognizer(root / "deploy")
    files = sorted(audio.glob("*.wav"))
    for path in files:
        wave, _ = read_audio(path, SR)
        with torch.no_grad():
            ref_feats = Fbank(40, SR)(torch.from_numpy(wave))
            ref = model.task(ref_feats[None], torch.tensor([ref_feats.shape[0]]))[0][0].numpy()
        np.testing.assert_allclose(rec.log_probs(rec.features(wave)), ref, rtol=RTOL, atol=ATOL)
        stream = rec.stream()
        for i in range(0, wave.size, 1280):  # 160 ms chunks
            stream.accept(wave[i : i + 1280])
        final = stream.finish()
        np.testing.assert_allclose(stream.log_probs, ref, rtol=RTOL, atol=ATOL)
        assert final == rec.transcribe(wave)
    for beam, lm in ((0, None), (8, None), (8, str(arpa))):
        options = DecodeOptions(beam=beam, lm=lm, lm_weight=1.0)
        expected = model.transcribe([str(p) for p in files], **vars(options)).texts
        decoder = rec.decoder(BeamOptions(beam=beam, lm_weight=1.0), lm=lm,
                              lexicon=out / "lexicon.txt" if lm else None)  # fmt: skip
        texts = []
        for path in files:
            wave, _ = read_audio(path, SR)
            assert rec.transcribe(wave, decoder=decoder) == expected[len(texts)]
            stream = rec.stream(decoder)
            rng = np.random.default_rng(len(texts))
            pos = 0
            while pos < wave.size:
                n = int(rng.integers(50, 3000))
                stream.accept(wave[pos : pos + n])
                pos += n
                assert isinstance(stream.partial, str)
            texts.append(stream.finish())
        assert texts == expected, (beam, lm)


def test_bench_deploy_case_quick(tmp_path):
    """`recur bench --case deploy --quick`: both models on both runtimes, the IndRNN forms, sizes."""
    assert main(["bench", "--case", "deploy", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    data = json.loads((tmp_path / "bench_cpu_deploy.json").read_text())
    rows = {(r["model"], r["runtime"]): r for r in data["rows"]}
    assert set(rows) == {(m, rt) for m in ("res_indrnn", "lstm") for rt in ("pytorch", "onnxruntime")}
    for r in rows.values():
        assert r["offline_rtf"] > 0 and r["chunk_median_ms"] > 0 and r["chunk_ms"] == pytest.approx(160)
    assert rows[("res_indrnn", "onnxruntime")]["max_abs_diff_vs_pytorch"] < ATOL
    assert rows[("lstm", "onnxruntime")]["onnx_bytes"] > 0
    assert [f["indrnn_form"] for f in data["forms"]] == ["scan", "loop", "rnn", "unrolled"]
    assert "## The IndRNN recurrence in ONNX" in (tmp_path / "bench_cpu_deploy.md").read_text()


@pytest.mark.parametrize("options", [[], ["--beam", "8"]])
def test_recur_stream_export_folder_equals_decode_of_the_checkpoint(exported, capsys, options, monkeypatch):
    root, ckpt, arpa, audio, out = exported
    monkeypatch.chdir(root)
    ref_lines, _ = decode_lines(capsys, ["--model", ckpt, str(audio), *options])
    for chunk_ms in ("37", "160"):
        assert main(["stream", "--model", str(root / "deploy"), str(audio), "--chunk-ms", chunk_ms, *options]) == 0
        captured = capsys.readouterr()
        assert captured.out.splitlines() == ref_lines[:3]
        assert "compute per chunk median" in captured.err and "onnxruntime" in captured.err
