"""LM data: the batchified stream of the PTB convention, its BPTT windows and DDP shards, sentence batches."""

import pytest
import torch

from toolkit.data.lm import SentenceBatches, StreamBatches, batchify, encode_stream, read_text
from toolkit.data.tokenizer import train_tokenizer
from toolkit.errors import UserError

LINES = ["the cat sat", "on the mat", "a dog", "the end of it all", "x y"]


def test_stream_has_eos_after_every_line():
    tok = train_tokenizer("word", LINES)
    ids = encode_stream(LINES, tok)
    assert ids.numel() == sum(len(line.split()) + 1 for line in LINES)
    ends = (ids == tok.eos_id).nonzero().flatten().tolist()
    pos, expected = -1, []
    for line in LINES:
        pos += len(line.split()) + 1
        expected.append(pos)
    assert ends == expected


def test_batchify_rows_are_contiguous_pieces():
    ids = torch.arange(103)
    b = batchify(ids, 4)
    assert b.shape == (4, 25)
    for r in range(4):
        assert torch.equal(b[r], torch.arange(25 * r, 25 * (r + 1)))
    with pytest.raises(UserError):
        batchify(torch.arange(5), 4)


def test_windows_cover_the_rows_and_targets_are_next_tokens():
    ids = torch.arange(1000)
    s = StreamBatches(ids, batch_size=3, bptt=35)
    xs, ys = zip(*list(s), strict=True)
    assert len(xs) == len(s) == -(-332 // 35)
    assert all(x.shape == y.shape and x.shape[0] == 3 for x, y in zip(xs, ys, strict=True))
    assert torch.equal(torch.cat(xs, 1), s.data[:, :-1]) and torch.equal(torch.cat(ys, 1), s.data[:, 1:])
    assert s.num_tokens == sum(y.numel() for y in ys)


def test_ddp_shards_are_disjoint_and_equally_long():
    ids = torch.arange(10_007)
    shards = [StreamBatches(ids, 4, 50, num_replicas=3, rank=r) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    seen = torch.cat([s.data.flatten() for s in shards])
    assert seen.unique().numel() == seen.numel()


def test_sentence_batches_shift_by_one_with_eos():
    tok = train_tokenizer("word", LINES)
    sb = SentenceBatches(LINES + [""], tok, max_tokens=12, shuffle=True, seed=0)
    got = []
    for x, y, lengths in sb:
        assert x.shape == y.shape and (x[:, 0] == tok.eos_id).all()
        for row in range(x.shape[0]):
            n = int(lengths[row])
            assert torch.equal(x[row, 1:n], y[row, : n - 1]) and y[row, n - 1] == tok.eos_id
            assert (x[row, n:] == 0).all() and (y[row, n:] == 0).all()
            got.append(tok.decode(y[row, : n - 1].tolist()))
        assert x.numel() <= 12 or x.shape[0] == 1
    assert sorted(got) == sorted(LINES)


def test_read_text_rejects_bad_bytes_by_line(tmp_path):
    (tmp_path / "t.txt").write_bytes(b"fine\n\xff\xfe bad\n")
    with pytest.raises(UserError, match="t.txt:2"):
        read_text(tmp_path / "t.txt")
    with pytest.raises(UserError, match="recur prep"):
        read_text(tmp_path / "none.txt")


def test_training_text_from_several_files_is_read_one_after_another(tmp_path):
    from toolkit.data.lm_datamodule import LMDataModule
    from toolkit.data.manifest import write_manifest

    (tmp_path / "lm.txt").write_text("the cat sat\non the mat\n")
    entry = {"id": "u1", "audio_filepath": "u1.wav", "duration": 1.0, "sampling_rate": 16000, "text": "a dog"}
    write_manifest(tmp_path / "train.jsonl", [entry])
    train_tokenizer("word", LINES).save(tmp_path / "tok")
    both = LMDataModule([str(tmp_path / "lm.txt"), str(tmp_path / "train.jsonl")], str(tmp_path / "lm.txt"),
                        str(tmp_path / "tok"))  # fmt: skip
    both.setup("fit")
    assert both.texts["train"] == ["the cat sat", "on the mat", "a dog"]
    one = LMDataModule(str(tmp_path / "lm.txt"), str(tmp_path / "train.jsonl"), str(tmp_path / "tok"))
    one.setup("fit")
    assert one.texts["train"] == ["the cat sat", "on the mat"] and one.texts["valid"] == ["a dog"]
