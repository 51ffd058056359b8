"""data_prep.synth: espeak-ng voices, deterministic by seed, and the sentence generator."""

import pytest

from data_prep import synth
from toolkit.data.audio import read_audio
from toolkit.data.manifest import read_manifest


def test_generator_is_deterministic_and_distinct():
    a = synth.generate_sentences(300, seed=1)
    assert a == synth.generate_sentences(300, seed=1) != synth.generate_sentences(300, seed=2)
    assert len(set(a)) == 300 and len({w for s in a for w in s.split()}) > 100


def test_small_corpus_is_spoken_and_reproducible(tmp_path):
    res = synth.prepare(None, tmp_path / "a", num_utts=8, dev_size=2, test_size=2, lm_sentences=20, seed=3, jobs=1)
    assert res.counts == {"train": 4, "dev": 2, "test": 2} and res.skipped == {}
    train = read_manifest(tmp_path / "a" / "train.jsonl")
    assert len({e["speaker"] for e in train}) > 1
    wave, sr = read_audio(train[0]["audio_filepath"])
    assert sr == 16000 and wave.abs().max() > 0.05 and 0.5 < wave.numel() / sr < 10
    lm = (tmp_path / "a" / "lm_text.txt").read_text().splitlines()
    spoken = {e["text"] for s in ("train", "dev", "test") for e in read_manifest(tmp_path / "a" / f"{s}.jsonl")}
    assert len(lm) == 20 and not spoken & set(lm)
    synth.prepare(None, tmp_path / "b", num_utts=8, dev_size=2, test_size=2, lm_sentences=20, seed=3, jobs=1)
    again = read_manifest(tmp_path / "b" / "train.jsonl")
    assert [e["text"] for e in again] == [e["text"] for e in train]
    a0, _ = read_audio(train[0]["audio_filepath"])
    b0, _ = read_audio(again[0]["audio_filepath"])
    assert a0.shape == b0.shape and bool((a0 == b0).all())


def test_text_file_source(tmp_path):
    (tmp_path / "s.txt").write_text("Hello, World!\nsecond line here\nthird one\nhello world\n")
    res = synth.prepare(tmp_path / "s.txt", tmp_path / "o", num_utts=3, dev_size=1, test_size=1, jobs=1)
    assert sum(res.counts.values()) == 3
    texts = {e["text"] for s in ("train", "dev", "test") for e in read_manifest(tmp_path / "o" / f"{s}.jsonl")}
    assert texts == {"hello world", "second line here", "third one"}
    with pytest.raises(Exception, match="fewer than"):
        synth.prepare(tmp_path / "s.txt", tmp_path / "p", num_utts=10, dev_size=1, test_size=1)
