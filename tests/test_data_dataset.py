"""SpeechDataset + collate + speech_loader end to end on tiny files, including audio that vanished."""

import json

import torch
from audio_fixtures import tone

from toolkit.data.cmvn import GlobalCMVN
from toolkit.data.dataset import SpeechDataset, collate, compute_cmvn, screen, speech_loader
from toolkit.data.features import Fbank, SpecAugment
from toolkit.data.manifest import Rejections
from toolkit.data.tokenizer import train_tokenizer

TEXTS = ["one two", "three", "four five six", "seven", "eight nine", "ten"]


def make_entries(tmp_path, rates=(16000, 8000, 22050, 16000, 44100, 16000)):
    entries = []
    for i, (text, sr) in enumerate(zip(TEXTS, rates, strict=True)):
        secs = 0.3 + 0.1 * i
        path = tone(tmp_path / f"u{i}.wav", secs, sr=sr, freq=200 + 50 * i, channels=1 + i % 2, seed=i)
        entries.append({"id": f"u{i}", "audio_filepath": str(path), "duration": secs, "text": text,
                        "sampling_rate": sr})
    return entries


def test_items_are_features_and_tokens_at_the_model_rate(tmp_path):
    entries = make_entries(tmp_path)
    tok = train_tokenizer("char", TEXTS)
    ds = SpeechDataset(entries, tok, Fbank(sampling_rate=16000))
    for e, item in zip(entries, (ds[i] for i in range(len(ds))), strict=True):
        samples = round(e["duration"] * 16000)
        assert abs(item["feats"].shape[0] - Fbank().num_frames(samples)) <= 1
        assert item["feats"].shape[1] == 80 and torch.isfinite(item["feats"]).all()
        assert tok.decode(item["tokens"].tolist()) == e["text"]


def test_collate_pads_and_keeps_lengths(tmp_path):
    entries = make_entries(tmp_path)
    ds = SpeechDataset(entries, train_tokenizer("char", TEXTS))
    items = [ds[i] for i in range(4)]
    b = collate(items)
    assert b.feats.shape == (4, max(it["feats"].shape[0] for it in items), 80)
    for row, it in enumerate(items):
        n = it["feats"].shape[0]
        assert b.feat_lens[row] == n and torch.equal(b.feats[row, :n], it["feats"])
        assert (b.feats[row, n:] == 0).all()
        assert torch.equal(b.tokens[row, : b.token_lens[row]], it["tokens"])


def test_loader_survives_a_file_that_disappeared(tmp_path):
    entries = make_entries(tmp_path)
    (tmp_path / "u2.wav").unlink()
    (tmp_path / "u4.wav").write_bytes(b"RIFF....garbage")
    ds = SpeechDataset(entries, train_tokenizer("char", TEXTS))
    loader = speech_loader(ds, max_seconds=2.0, shuffle=True, seed=0, num_workers=1)
    ids, dropped = [], 0
    for batch in loader:
        ids += batch.ids
        dropped += batch.dropped
        assert batch.feats.shape[0] == len(batch.ids)
    assert sorted(ids) == ["u0", "u1", "u3", "u5"] and dropped == 2


def test_screen_rejects_text_the_tokenizer_cannot_encode(tmp_path):
    entries = make_entries(tmp_path)
    entries[1]["text"] = "thrée"
    entries[3]["text"] = "  "
    rej = Rejections()
    kept = screen(entries, train_tokenizer("char", TEXTS), rej, "train")
    assert [e["id"] for e in kept] == ["u0", "u2", "u4", "u5"]
    assert [(r[1], r[3].split(" (")[0]) for r in rej.rows] == [("u1", "cannot encode"), ("u3", "empty transcript")]
    assert "'é'" in rej.rows[0][3]


def test_cmvn_from_manifest_matches_the_features(tmp_path):
    entries = make_entries(tmp_path)
    stats = compute_cmvn(entries, path=tmp_path / "cmvn.json", progress=False)
    feats = torch.cat([SpeechDataset(entries)[i]["feats"] for i in range(len(entries))])
    torch.testing.assert_close(stats.mean, feats.mean(0), rtol=1e-4, atol=1e-4)
    assert json.loads((tmp_path / "cmvn.json").read_text())["frames"] == feats.shape[0]
    ds = SpeechDataset(entries, cmvn=GlobalCMVN.load(tmp_path / "cmvn.json"), specaugment=SpecAugment())
    item = ds[5]
    assert item["feats"].shape == (SpeechDataset(entries)[5]["feats"].shape)


def test_cached_speed_perturbation_keeps_one_copy_per_factor(tmp_path):
    import random

    from toolkit.data.speech_datamodule import CachedSpeechDataset

    entries = make_entries(tmp_path)
    tok = train_tokenizer("char", TEXTS)
    base = SpeechDataset(entries, tok, Fbank(sampling_rate=16000))
    cached = CachedSpeechDataset(base, speed_factors=(0.9, 1.0, 1.1))
    assert len(cached) == len(entries) and cached.durations == base.durations
    random.seed(0)
    for i, e in enumerate(entries):
        slow, plain, fast = (c["feats"] for c in cached.items[i])
        assert torch.equal(plain, base[i]["feats"])
        samples = round(e["duration"] * 16000)
        # 0.9x speed plays longer, 1.1x shorter (Kaldi's sox 'speed': resampled, same frame rate)
        assert abs(slow.shape[0] - Fbank().num_frames(round(samples / 0.9))) <= 1
        assert abs(fast.shape[0] - Fbank().num_frames(round(samples / 1.1))) <= 1
        seen = {cached[i]["feats"].shape[0] for _ in range(30)}
        assert seen == {slow.shape[0], plain.shape[0], fast.shape[0]}
        assert all(torch.equal(c["tokens"], base[i]["tokens"]) for c in cached.items[i])


def test_cached_dataset_drops_an_item_whose_audio_fails(tmp_path):
    from toolkit.data.speech_datamodule import CachedSpeechDataset

    entries = make_entries(tmp_path)
    (tmp_path / "u3.wav").write_bytes(b"RIFF....garbage")
    cached = CachedSpeechDataset(SpeechDataset(entries, train_tokenizer("char", TEXTS)), speed_factors=(0.9, 1.1))
    assert cached.dropped == 1 and len(cached) == len(entries) - 1
    assert [it[0]["id"] for it in cached.items] == [e["id"] for e in entries if e["id"] != "u3"]
