"""data_prep for fsdd, librispeech, folder and timit, each on a tiny tree in the corpus's own layout."""

import pytest
from audio_fixtures import tone

from data_prep import folder, fsdd, librispeech, timit
from toolkit.data.manifest import read_manifest
from toolkit.errors import UserError


def test_fsdd_split_by_index(tmp_path):
    rec = tmp_path / "fsdd" / "recordings"
    for digit in (0, 7):
        for spk in ("jackson", "theo"):
            for idx in (0, 4, 5, 49):
                tone(rec / f"{digit}_{spk}_{idx}.wav", 0.3, sr=8000, seed=digit * 100 + idx)
    (rec / "README.wav").write_bytes(b"")
    res = fsdd.prepare(tmp_path / "fsdd", tmp_path / "out", jobs=2)
    assert res.counts == {"train": 8, "test": 8}
    test = read_manifest(tmp_path / "out" / "test.jsonl")
    assert {e["text"] for e in test} == {"zero", "seven"} and {e["speaker"] for e in test} == {"jackson", "theo"}
    assert all(int(e["id"].split("_")[2]) <= 4 for e in test) and test[0]["sampling_rate"] == 8000
    assert res.skipped == {"name not {digit}_{speaker}_{index}": 1}


def librispeech_tree(root):
    chapters = (("dev-clean", "84", "121123"), ("dev-clean", "174", "50561"), ("test-clean", "61", "70968"))
    for subset, spk, chap in chapters:
        d = root / subset / spk / chap
        lines = []
        for u in range(3):
            uid = f"{spk}-{chap}-{u:04d}"
            tone(d / f"{uid}.flac", 0.3 + 0.1 * u, seed=u + int(spk))
            lines.append(f"{uid} WORDS OF {uid.replace('-', ' ')}")
        (d / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    tone(root / "dev-clean" / "84" / "121123" / "84-121123-0009.flac", 0.3)  # audio with no transcript line
    (root / "test-clean" / "61" / "70968" / "61-70968-0001.flac").unlink()  # transcript with no audio
    return root


def test_librispeech_subsets(tmp_path):
    src = librispeech_tree(tmp_path / "LibriSpeech")
    res = librispeech.prepare(src, tmp_path / "out", jobs=2)
    assert res.counts == {"dev-clean": 6, "test-clean": 2}
    assert res.skipped == {"no transcript": 1, "missing file": 1}
    dev = read_manifest(tmp_path / "out" / "dev-clean.jsonl")
    assert dev[0]["text"].startswith("WORDS OF") and {e["speaker"] for e in dev} == {"84", "174"}
    only = librispeech.prepare(src, tmp_path / "out2", subsets=("test-clean",), jobs=1)
    assert only.counts == {"test-clean": 2}
    with pytest.raises(UserError, match="train-clean-100"):
        librispeech.prepare(src, tmp_path / "out3", subsets=("train-clean-100",))


def test_folder_with_transcripts_beside_audio(tmp_path):
    src = tmp_path / "audio"
    tone(src / "a.wav", 0.3)
    (src / "a.txt").write_text("hello there\n")
    tone(src / "sub" / "b.flac", 0.3, sr=44100, channels=2)
    (src / "sub" / "b.txt").write_text("stereo file")
    tone(src / "c.wav", 0.3)
    tone(src / "d.wav", 0.3)
    (src / "d.txt").write_bytes(b"\xff\xfe\x00bad")
    tone(src / "e.wav", 0.3)
    (src / "e.txt").write_text("   \n")
    res = folder.prepare(src, tmp_path / "out", split="train", jobs=2)
    assert res.counts == {"train": 2}
    assert res.skipped == {"no transcript": 1, "not UTF-8 transcript": 1, "empty transcript": 1}
    ids = {e["id"]: e for e in read_manifest(tmp_path / "out" / "train.jsonl")}
    assert set(ids) == {"a", "sub-b"} and ids["sub-b"]["sampling_rate"] == 44100


def test_folder_from_tsv(tmp_path):
    tone(tmp_path / "x" / "one.wav", 0.3)
    tone(tmp_path / "x" / "two.wav", 0.3)
    (tmp_path / "list.tsv").write_text("x/one.wav\tfirst one\nx/two.wav\t\nx/three.wav\tmissing\n")
    res = folder.prepare(tmp_path / "list.tsv", tmp_path / "out", jobs=1)
    assert res.counts == {"all": 1} and res.skipped == {"empty transcript": 1, "missing file": 1}


def test_folder_split_by_id_hash_is_stable_and_never_empty(tmp_path, capsys):
    """--dev-fraction/--test-fraction: each id's set follows its hash alone (adding files moves no one),
    and a folder too small for the hash to fill a held-out set still gets one utterance there."""
    from toolkit.cli.main import main

    src = tmp_path / "audio"
    for i in range(20):
        tone(src / f"u{i:02d}.wav", 0.2, seed=i)
        (src / f"u{i:02d}.txt").write_text(f"word {i}\n")
    res = folder.prepare(src, tmp_path / "out", dev_fraction=0.2, test_fraction=0.2, jobs=1)
    sets = {s: {e["id"] for e in read_manifest(tmp_path / "out" / f"{s}.jsonl")} for s in ("train", "dev", "test")}
    assert sum(map(len, sets.values())) == 20 and len(set().union(*sets.values())) == 20
    assert res.counts == {s: len(ids) for s, ids in sets.items()} and all(sets.values())
    for uid in sets["test"]:
        assert folder.hash_fraction(uid) < 0.2
    for uid in sets["dev"]:
        assert 0.2 <= folder.hash_fraction(uid) < 0.4
    for i in range(20, 30):
        tone(src / f"u{i:02d}.wav", 0.2, seed=i)
        (src / f"u{i:02d}.txt").write_text(f"word {i}\n")
    folder.prepare(src, tmp_path / "more", dev_fraction=0.2, test_fraction=0.2, jobs=1)
    for s, ids in sets.items():
        assert ids <= {e["id"] for e in read_manifest(tmp_path / "more" / f"{s}.jsonl")}

    tiny = tmp_path / "tiny"
    for i in range(3):
        tone(tiny / f"t{i}.wav", 0.2, seed=i)
        (tiny / f"t{i}.txt").write_text("a b")
    assert folder.prepare(tiny, tmp_path / "t", dev_fraction=0.1, test_fraction=0.1, jobs=1).counts == {
        "train": 1, "dev": 1, "test": 1}  # fmt: skip
    args = ["prep", "folder", "--src", str(tiny), "--out", str(tmp_path / "x")]
    assert main([*args, "--split", "train", "--test-fraction", "0.1"]) == 2
    assert main([*args, "--dev-fraction", "0.6", "--test-fraction", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "give one or the other" in err and "leaves no training set" in err


PHN = """0 2000 h#
2000 2400 sh
2400 3000 ix
3000 3500 q
3500 4000 bcl
4000 4600 b
4600 5200 ao
5200 7000 h#
"""


def timit_tree(root):
    spks = {("TRAIN", "DR1", "FCJF0"), ("TEST", "DR1", "FELC0"), ("TEST", "DR1", "FAKS0"), ("TEST", "DR2", "MXXX0")}
    for part, dr, spk in spks:
        for utt in ("SA1", "SI648", "SX28"):
            base = root / "TIMIT" / part / dr / spk / utt
            tone(base.with_suffix(".WAV"), 0.5, fmt="NIST", seed=len(spk) + len(utt))
            base.with_suffix(".PHN").write_text(PHN)
            base.with_suffix(".WRD").write_text("2000 3000 she\n3000 5200 saw\n")
            base.with_suffix(".TXT").write_text("0 7000 She saw.\n")
    return root


def test_timit_splits_folding_and_word_targets(tmp_path):
    src = timit_tree(tmp_path / "ldc")
    res = timit.prepare(src, tmp_path / "out", jobs=2)
    # SA sentences dropped; FELC0 is core test, FAKS0 dev, MXXX0 in neither
    assert res.counts == {"train": 2, "dev": 2, "test": 2}
    test = read_manifest(tmp_path / "out" / "test.jsonl")
    assert test[0]["text"] == "sil sh ih sil b aa sil" and test[0]["speaker"] == "FELC0"
    words = read_manifest(tmp_path / "out" / "test_words.jsonl")
    assert words[0]["text"] == "she saw" and words[0]["id"] == test[0]["id"]


def test_timit_fold_map_and_speaker_lists():
    assert len(timit.FOLD_39) == 61 and timit.FOLD_39["q"] is None
    assert len({v for v in timit.FOLD_39.values() if v}) == 39
    assert len(timit.CORE_TEST) == 24 and len(timit.DEV) == 50 and not timit.CORE_TEST & timit.DEV
    with pytest.raises(KeyError):
        timit.fold_phones(["sh", "xx"])
