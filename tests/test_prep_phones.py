"""data_prep.phones: espeak-ng G2P transcripts and a pronunciation lexicon without dev/test words."""

import pytest

from data_prep import phones
from data_prep.espeak import Espeak
from toolkit.data.manifest import read_manifest, write_manifest
from toolkit.data.text import normalize_text
from toolkit.errors import UserError


def entry(uid, text):
    return {"id": uid, "audio_filepath": f"/nowhere/{uid}.flac", "duration": 1.5, "text": text, "sampling_rate": 16000}


def test_phonemes_are_ipa_phones_without_stress():
    engine = Espeak()
    assert engine.phonemes("judge") == ["dʒ", "ʌ", "dʒ"]
    assert engine.phonemes("the") == ["ð", "ə"]
    assert engine.phonemes("Judge!") == engine.phonemes("judge")
    assert not any(m in p for p in engine.phonemes("prisoners utilize") for m in "ˈˌ")


def test_manifests_lexicon_and_inventory(tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    write_manifest(src / "train.jsonl", [entry("t1", "The Judge, a man."), entry("t2", "Judge the judge")])
    write_manifest(src / "test.jsonl", [entry("x1", "a zebra")])
    (src / "lm_text.txt").write_text("the button was round\n")
    res = phones.prepare(src, tmp_path / "out")
    assert res.counts == {"train": 2, "test": 1} and res.skipped == {}
    lexicon = dict(line.split("\t") for line in (tmp_path / "out/lexicon.txt").read_text().splitlines())
    # training and LM-text words only: "zebra" is pronounced for the test manifest, not decodable
    assert set(lexicon) == {"the", "judge", "a", "man", "button", "was", "round"}
    assert lexicon["judge"] == "dʒ ʌ dʒ" and lexicon["a"] == "ə"  # the weak form, not the letter name
    train = read_manifest(tmp_path / "out/train.jsonl", resolve_paths=False)
    assert train[0]["words"] == "the judge a man" and train[0]["id"] == "t1"
    assert train[0]["text"] == " ".join([lexicon["the"], lexicon["judge"], lexicon["a"], lexicon["man"]])
    test = read_manifest(tmp_path / "out/test.jsonl", resolve_paths=False)
    assert test[0]["text"].startswith("ə z") and test[0]["words"] == "a zebra"
    inventory = (tmp_path / "out/phones.txt").read_text().split()
    used = {p for e in train + test for p in e["text"].split()}
    assert used <= set(inventory) and len(inventory) == len(set(inventory))
    # every phone passes a --lowercase --remove-punct tokenizer unchanged (button's syllabic n included)
    assert all(normalize_text(p, True, True) == p for p in inventory)
    assert phones.prepare(src, tmp_path / "out").reused


def test_a_folder_without_manifests_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="no train.jsonl"):
        phones.prepare(tmp_path, tmp_path / "out")
