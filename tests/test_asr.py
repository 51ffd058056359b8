"""CTC speech recognition end to end on tiny synthetic data: recur fit, then recur decode."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf
import torch

from toolkit.api import load_task
from toolkit.cli.main import main
from toolkit.data.manifest import write_manifest
from toolkit.data.tokenizer import train_tokenizer
from toolkit.decode import greedy_ctc
from toolkit.decode.transcribe import expand_inputs, transcribe
from toolkit.train.cli import fit


def test_fit_then_decode_files_folder_and_manifest(tmp_path, capsys, asr_corpus, asr_config, train_word_lm):
    summary = fit(["--config", str(asr_config(tmp_path))])
    exp = tmp_path / "exp/res_indrnn"
    metrics = json.loads((exp / "metrics.json").read_text())
    assert summary["train"]["steps"] == 8 and metrics["train"]["item_unit"] == "audio s"
    assert 0.0 <= metrics["final"]["test/wer"] and "val/wer" in metrics["history"][-1]
    assert (exp / "checkpoints/best.ckpt").is_file() and (exp / "config.yaml").is_file()

    # a folder of mixed files: 8 kHz WAV, stereo 44.1 kHz FLAC, and one corrupt file
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    t = np.arange(8000) / 8000
    sf.write(mixed / "low.wav", 0.3 * np.sin(2 * np.pi * 300 * t), 8000)
    t = np.arange(44100) / 44100
    sf.write(mixed / "stereo.flac", np.stack([np.sin(2 * np.pi * 700 * t)] * 2, axis=1) * 0.3, 44100)
    (mixed / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    capsys.readouterr()
    assert main(["decode", "--model", str(exp), str(mixed)]) == 0
    out, err = capsys.readouterr()
    assert sorted(line.split("\t")[0] for line in out.splitlines()) == ["low", "stereo"]
    assert "skipped" in err and "broken.wav" in err and "real-time factor" in err

    # a manifest with references is scored into the experiment folder, greedy and beam
    assert main(["decode", "--model", str(exp), str(tmp_path / "test.jsonl"), "--set", "test"]) == 0
    assert main(["decode", "--model", str(exp), str(tmp_path / "test.jsonl"), "--set", "test", "--beam", "4"]) == 0
    for tag in ("test", "test_beam4"):
        assert (exp / "decode" / tag / "errs.txt").read_text().startswith("%WER")
    final = json.loads((exp / "metrics.json").read_text())["final"]
    assert {"test/wer", "test_beam4/wer", "test_beam4/rtf"} <= set(final)
    # without --set: scored under decode/adhoc/, and neither the recorded set's files nor the
    # results table are touched (a tuning sweep must not leave recogs.txt out of step with metrics)
    recorded = (exp / "decode" / "test_beam4" / "recogs.txt").stat()
    assert main(["decode", "--model", str(exp), str(tmp_path / "test.jsonl"), "--beam", "2"]) == 0
    assert (exp / "decode" / "adhoc" / "test_beam2" / "wer_summary.txt").is_file()
    assert main(["decode", "--model", str(exp), str(tmp_path / "test.jsonl"), "--beam", "4"]) == 0
    assert (exp / "decode" / "adhoc" / "test_beam4" / "recogs.txt").is_file()
    now = (exp / "decode" / "test_beam4" / "recogs.txt").stat()
    assert (now.st_ino, now.st_mtime_ns) == (recorded.st_ino, recorded.st_mtime_ns)
    assert json.loads((exp / "metrics.json").read_text())["final"] == final

    # a word-level recur LM fuses through a lexicon spelled in the model's characters
    lm_exp = train_word_lm(tmp_path)
    assert main(["decode", "--model", str(exp), str(tmp_path / "test.jsonl"), "--set", "test", "--beam", "4",
                 "--lm", str(lm_exp), "--lm-weight", "0.5"]) == 0  # fmt: skip
    lexicon = (exp / "decode" / f"lexicon.{lm_exp.name}.txt").read_text().splitlines()
    assert sorted(lexicon) == ["aa\ta a |", "ab\ta b |", "ba\tb a |"]
    hyps = [line.split("=", 1)[1] for line in (exp / "decode/test_beam4_rnnlm/recogs.txt").read_text().splitlines()
            if "\thyp=" in line]  # fmt: skip
    assert hyps and all(set(h.split()) <= set(asr_corpus.words) for h in hyps)  # only lexicon words come out

    # n-best rescoring by the recur LM: at weight 0 the first pass's best is kept; it needs a beam
    args = ["decode", "--model", str(exp), str(tmp_path / "test.jsonl"), "--nbest", "4", "--rescore-lm", str(lm_exp)]
    assert main([*args, "--beam", "4", "--set", "test", "--rescore-weight", "0"]) == 0
    rescored = (exp / "decode/test_beam4_rescored/recogs.txt").read_text()
    assert rescored == (exp / "decode/test_beam4/recogs.txt").read_text()
    assert main(args) == 2  # a usage error
    assert "add --beam" in capsys.readouterr().err
    assert main(["decode", "--model", str(exp), str(tmp_path / "test.jsonl"), "--beam", "4", "--nbest", "4"]) == 2
    assert "--nbest: options of n-best rescoring" in capsys.readouterr().err

    # a blank penalty no blank can pay: greedy decoding as if the model had no blank
    out = tmp_path / "no_blank.txt"
    assert main(["decode", "--model", str(exp), str(tmp_path / "test.jsonl"), "--set", "test",
                 "--blank-penalty", "1e4", "--out", str(out)]) == 0  # fmt: skip
    assert (exp / "decode/test_bp10000/recogs.txt").is_file()
    model = load_task(str(exp), expect="asr")

    def without_blank(log_probs, lengths):
        masked = torch.cat([torch.full_like(log_probs[..., :1], -float("inf")), log_probs[..., 1:]], dim=-1)
        return [model.tokenizer.decode(ids) for ids in greedy_ctc(masked, lengths)]

    utts = expand_inputs([str(tmp_path / "test.jsonl")])
    expected, _ = transcribe(model, utts, without_blank, progress=False)
    assert out.read_text() == "".join(f"{r.id}\t{r.text}\n" for r in expected)

    class SureOfBlank(torch.nn.Module):
        """The model with the blank 20 nats likelier on every frame: greedy decoding deletes everything."""

        def __init__(self):
            super().__init__()
            self.inner, self.hparams, self.tokenizer = model, model.hparams, model.tokenizer

        def forward(self, feats, lengths):
            log_probs, out_lens = self.inner(feats, lengths)
            return log_probs + 20.0 * (torch.arange(log_probs.shape[-1]) == 0), out_lens

        def transcribe(self, log_probs, lengths):
            return self.inner.transcribe(log_probs, lengths)

    sure = SureOfBlank()
    assert all(r.text == "" for r in transcribe(sure, utts, progress=False)[0])
    repaired, _ = transcribe(sure, utts, progress=False, blank_penalty=1e4)
    assert [r.text for r in repaired] == [r.text for r in expected]


def test_non_finite_loss_skips_the_batch(tmp_path, asr_corpus):
    from toolkit.data.dataset import SpeechBatch
    from toolkit.tasks.asr import CTCTask

    task = CTCTask(str(tmp_path / "tokenizer"), encoder="lstm", hidden_size=8, num_layers=1)
    # 3 frames after subsampling cannot carry 5 target tokens: CTC loss is infinite
    batch = SpeechBatch(["x"], torch.randn(1, 9, 80), torch.tensor([9]), torch.tensor([[3, 4, 3, 4, 3]]),
                        torch.tensor([5]), ["ab ab"])  # fmt: skip
    task.log = lambda *a, **k: None
    assert task.training_step(batch, 0) is None and int(task.skipped_batches) == 1


def test_untokenizable_transcripts_are_listed_not_kept(tmp_path, asr_corpus):
    from toolkit.data.speech_datamodule import SpeechDataModule

    lines = (tmp_path / "dev.jsonl").read_text().splitlines()
    extra = json.loads(lines[0]) | {"id": "weird", "text": "ab zz"}  # 'z' never occurs in training text
    (tmp_path / "dev.jsonl").write_text("\n".join([*lines, json.dumps(extra)]) + "\n")
    dm = SpeechDataModule(str(tmp_path / "train.jsonl"), str(tmp_path / "dev.jsonl"), str(tmp_path / "tokenizer"))
    dm.setup("validate")
    assert len(dm.datasets["dev"]) == len(lines)
    rows = (tmp_path / "rejected_dev_training.tsv").read_text().splitlines()
    assert rows[1].startswith("dev\tweird\t") and "cannot encode ('z'" in rows[1]


def test_references_are_scored_as_the_tokenizer_writes_them(tmp_path):
    """A lowercasing, punctuation-free tokenizer: 'Hello, World.' is 'hello world' for WER/CER."""
    from toolkit.data.dataset import SpeechBatch
    from toolkit.tasks.asr import CTCTask

    train_tokenizer("char", ["hello world"], lowercase=True, remove_punct=True).save(tmp_path / "tok")
    task = CTCTask(str(tmp_path / "tok"), feat_dim=8, encoder="indrnn", hidden_size=4, num_layers=1)
    task.transcribe = lambda log_probs, lengths: ["hello world", "hello"]
    tokens = torch.tensor([task.tokenizer.encode("hello world"), task.tokenizer.encode("hello") + [0] * 6])
    batch = SpeechBatch(["a", "b"], torch.randn(2, 40, 8), torch.tensor([40, 30]), tokens,
                        torch.tensor([11, 5]), ["Hello, World.", "HELLO!"])  # fmt: skip
    task.eval()
    task.step(batch, "val")
    assert task.wers["val_"].compute() == 0 and task.cers["val_"].compute() == 0


def test_cached_features_with_speed_perturbation_feed_training_batches(tmp_path, asr_corpus):
    """cache_features + speed_perturb: training batches come from the perturbed copies; dev stays plain."""
    from toolkit.data.speech_datamodule import CachedSpeechDataset, SpeechDataModule

    dm = SpeechDataModule(str(tmp_path / "train.jsonl"), str(tmp_path / "dev.jsonl"), str(tmp_path / "tokenizer"),
                          cache_features=True, speed_perturb=[0.9, 1.1], max_seconds=4.0)  # fmt: skip
    dm.setup("fit")
    train, dev = dm.datasets["train"], dm.datasets["dev"]
    assert isinstance(train, CachedSpeechDataset) and all(len(c) == 2 for c in train.items)
    assert all(len(c) == 1 for c in dev.items)
    lengths = {it[0]["id"]: {c["feats"].shape[0] for c in it} for it in train.items}
    assert all(len(v) == 2 for v in lengths.values())  # 0.9x and 1.1x differ in length
    seen = 0
    for batch in dm.train_dataloader():
        for uid, n in zip(batch.ids, batch.feat_lens.tolist(), strict=True):
            assert n in lengths[uid]
            seen += 1
    assert seen == len(train)


def test_extra_train_manifests_with_the_real_set_repeated(tmp_path, asr_corpus):
    """extra_train joins the training set once per epoch; train_repeat upsamples train without recomputing it."""
    import pytest

    from toolkit.data.speech_datamodule import CachedSpeechDataset, RepeatedConcatDataset, SpeechDataModule
    from toolkit.errors import UserError

    sets = asr_corpus.sets
    extra_dir = tmp_path / "synth"
    extra_dir.mkdir()
    extra = [asr_corpus.utterance(extra_dir / f"x{i}.wav", ["aa", "ba"], seed=100 + i) for i in range(5)]
    write_manifest(extra_dir / "train.jsonl", extra)
    dm = SpeechDataModule(str(tmp_path / "train.jsonl"), str(tmp_path / "dev.jsonl"), str(tmp_path / "tokenizer"),
                          cache_features=True, max_seconds=4.0, extra_train=[str(extra_dir / "train.jsonl")],
                          train_repeat=3)  # fmt: skip
    dm.setup("fit")
    train = dm.datasets["train"]
    assert isinstance(train, RepeatedConcatDataset)
    real, synth = train.parts
    assert isinstance(real, CachedSpeechDataset) and len(real) == len(sets["train"]) and len(synth) == 5
    assert len(train) == 3 * len(sets["train"]) + 5
    assert sorted(train.durations) == sorted(3 * real.durations + synth.durations)
    seen: dict[str, int] = {}
    for batch in dm.train_dataloader():
        for uid in batch.ids:
            seen[uid] = seen.get(uid, 0) + 1
    assert all(seen[e["id"]] == 3 for e in sets["train"]) and all(seen[e["id"]] == 1 for e in extra)
    assert len(dm.datasets["dev"]) == len(sets["dev"])  # dev is untouched
    with pytest.raises(UserError, match="train_repeat"):
        SpeechDataModule(str(tmp_path / "train.jsonl"), None, str(tmp_path / "tokenizer"), train_repeat=0)
    missing = SpeechDataModule(str(tmp_path / "train.jsonl"), None, str(tmp_path / "tokenizer"),
                               extra_train=[str(tmp_path / "nope.jsonl")])  # fmt: skip
    with pytest.raises(UserError, match="nope.jsonl not found"):
        missing.setup("fit")
