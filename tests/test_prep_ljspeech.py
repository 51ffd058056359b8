"""data_prep.ljspeech on a fake LJSpeech tree holding every kind of bad input, plus idempotence."""

import os
import shutil

import pytest
from audio_fixtures import bad_audio, tone

from data_prep import ljspeech
from toolkit.data.manifest import read_manifest
from toolkit.errors import UserError


def make_corpus(root, n=12, flac=False):
    wavs = root / "wavs"
    lines = []
    for i in range(1, n + 1):
        uid = f"LJ001-{i:04d}"
        tone(wavs / f"{uid}.{'flac' if flac and i % 2 else 'wav'}", 0.4 + 0.05 * i, sr=22050, seed=i)
        lines.append(f"{uid}|Raw text {i}, Mr. X.|Raw text {i}, Mister X.")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    extra = [f"LJ050-{i:04d}|raw {i}|LM sentence {i}." for i in range(1, 6)]
    (root / "metadata_all.csv").write_text("\n".join(lines + extra) + "\n", encoding="utf-8")
    return root


def test_fixed_split_by_id_order_and_lm_text(tmp_path):
    src = make_corpus(tmp_path / "LJSpeech-1.1", flac=True)
    res = ljspeech.prepare(src, tmp_path / "out", dev_size=2, test_size=3, jobs=2)
    assert res.counts == {"train": 7, "dev": 2, "test": 3} and res.skipped == {}
    train, dev, test = (read_manifest(tmp_path / "out" / f"{s}.jsonl") for s in ("train", "dev", "test"))
    assert [e["id"] for e in dev] == ["LJ001-0008", "LJ001-0009"]
    assert [e["id"] for e in test] == ["LJ001-0010", "LJ001-0011", "LJ001-0012"]
    assert train[0]["text"] == "Raw text 1, Mister X." and train[0]["sampling_rate"] == 22050
    assert train[0]["audio_filepath"].endswith(".flac") and train[1]["audio_filepath"].endswith(".wav")
    assert train[0]["duration"] == pytest.approx(0.45, abs=1e-3)
    lm = (tmp_path / "out" / "lm_text.txt").read_text().splitlines()
    assert lm == [f"LM sentence {i}." for i in range(1, 6)]


def test_split_file_replaces_the_fixed_split(tmp_path):
    src = make_corpus(tmp_path / "lj", n=6)
    (tmp_path / "split.tsv").write_text("LJ001-0002\ttrain\nLJ001-0005\teval\nLJ001-0001\ttrain\n")
    res = ljspeech.prepare(src, tmp_path / "out", split_file=tmp_path / "split.tsv", jobs=1)
    assert res.counts == {"train": 2, "eval": 1}
    assert len((tmp_path / "out" / "lm_text.txt").read_text().splitlines()) == 5  # no id of metadata.csv
    (tmp_path / "bad.tsv").write_text("LJ001-0002 train extra\n")
    with pytest.raises(UserError, match="bad.tsv:1"):
        ljspeech.prepare(src, tmp_path / "out2", split_file=tmp_path / "bad.tsv")


def test_bad_items_are_skipped_counted_and_listed(tmp_path):
    src = make_corpus(tmp_path / "lj", n=14)
    bad = bad_audio(tmp_path / "bad")
    kinds = ["empty file", "truncated", "corrupt audio data", "unreadable", "zero length", "silence only", "too long"]
    for i, kind in enumerate(kinds, 1):
        shutil.copy(bad[kind], src / "wavs" / f"LJ001-{i:04d}.wav")
    os.unlink(src / "wavs" / "LJ001-0008.wav")
    meta = (src / "metadata.csv").read_bytes().splitlines()
    meta[8] = b"LJ001-0009|raw|"                      # empty normalized and raw text -> raw used
    meta[9] = b"LJ001-0010||"                         # no text at all
    meta[10] = b"LJ001-0011|\xff\xfe bad bytes|\xff"  # not UTF-8
    meta.append(meta[11])                             # duplicate id
    (src / "metadata.csv").write_bytes(b"\n".join(meta) + b"\n")
    res = ljspeech.prepare(src, tmp_path / "out", dev_size=1, test_size=1, max_duration=2.0, jobs=2)
    assert sum(res.counts.values()) == 4  # 0009 (raw text), 0012, 0013, 0014
    expected = {k: 1 for k in kinds} | {"missing file": 1, "empty transcript": 1, "not UTF-8": 1, "duplicate id": 1}
    assert res.skipped == expected
    rows = (tmp_path / "out" / "rejected.tsv").read_text().splitlines()[1:]
    assert len(rows) == sum(expected.values())
    assert all(len(r.split("\t")) == 4 for r in rows)
    assert "skipped 11" in res.summary()


def test_rerun_is_skipped_unless_forced_or_options_change(tmp_path):
    src = make_corpus(tmp_path / "lj", n=8)
    out = tmp_path / "out"
    first = ljspeech.prepare(src, out, dev_size=1, test_size=1, jobs=1)
    stamp = os.stat(out / "train.jsonl").st_mtime_ns
    again = ljspeech.prepare(src, out, dev_size=1, test_size=1, jobs=1)
    assert again.reused and again.counts == first.counts and os.stat(out / "train.jsonl").st_mtime_ns == stamp
    assert not ljspeech.prepare(src, out, dev_size=1, test_size=1, jobs=1, force=True).reused
    changed = ljspeech.prepare(src, out, dev_size=2, test_size=1, jobs=1)
    assert not changed.reused and changed.counts["dev"] == 2
    (out / "dev.jsonl").unlink()
    assert not ljspeech.prepare(src, out, dev_size=2, test_size=1, jobs=1).reused


def test_wrong_folder_fails_before_writing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="metadata.csv"):
        ljspeech.prepare(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(UserError, match="too few"):
        ljspeech.prepare(make_corpus(tmp_path / "lj", n=3), tmp_path / "out")
    assert not (tmp_path / "out").exists()
