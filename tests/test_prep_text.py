"""data_prep for the LM corpora: ptb (word/char), wikitext, text8, enwik8, on files in their layouts."""

import pytest

from data_prep import enwik8, ptb, text8, wikitext
from toolkit.data.lm import encode_stream, read_byte_stream, read_text
from toolkit.data.tokenizer import ByteTokenizer, train_tokenizer
from toolkit.errors import UserError


def test_ptb_word_and_char(tmp_path):
    src = tmp_path / "simple-examples" / "data"
    src.mkdir(parents=True)
    words = {"train": [" the cat <unk> sat ", " a dog N"], "valid": [" the dog "], "test": [" a cat "]}
    for split, lines in words.items():
        (src / f"ptb.{split}.txt").write_text("\n".join(lines) + "\n")
        chars = [" ".join("_".join(line.split())) for line in lines]
        (src / f"ptb.char.{split}.txt").write_text("\n".join(chars) + "\n")
    res = ptb.prepare(tmp_path / "simple-examples", tmp_path / "w")
    assert res.extra == {"train.txt tokens": 9, "valid.txt tokens": 3, "test.txt tokens": 3}
    lines = read_text(tmp_path / "w" / "train.txt")
    tok = train_tokenizer("word", lines)
    assert encode_stream(lines, tok).numel() == 9
    res = ptb.prepare(src, tmp_path / "c", level="char")
    char_lines = read_text(tmp_path / "c" / "train.txt")
    assert char_lines[0] == "t h e _ c a t _ < u n k > _ s a t"
    assert res.extra["train.txt tokens"] == sum(len(x.split()) + 1 for x in char_lines)
    with pytest.raises(UserError, match="ptb.train.txt"):
        ptb.prepare(tmp_path, tmp_path / "x")


def test_wikitext_keeps_lines_and_headings(tmp_path):
    d = tmp_path / "wikitext-2"
    d.mkdir()
    body = " \n = Title = \n \n Some text here . \n"
    for split in ("train", "valid", "test"):
        (d / f"wiki.{split}.tokens").write_text(body)
    res = wikitext.prepare(tmp_path, tmp_path / "out")
    assert res.counts["train.txt"] == 4 and res.extra["train.txt tokens"] == 3 + 4 + 4
    with pytest.raises(UserError, match="wiki.train.raw"):
        wikitext.prepare(tmp_path, tmp_path / "raw", raw=True)


def test_text8_and_enwik8_byte_splits(tmp_path):
    data = ("anarchism originated as a term " * 40).encode()
    (tmp_path / "text8").write_bytes(data)
    res = text8.prepare(tmp_path, tmp_path / "t8", valid=100, test=50)
    parts = [(tmp_path / "t8" / f"{s}.txt").read_bytes() for s in ("train", "valid", "test")]
    assert [p[:-1] for p in parts] == [data[:-150], data[-150:-50], data[-50:]] and parts[0].endswith(b"\n")
    assert res.extra["test.txt characters"] == 50
    with pytest.raises(UserError, match="100,000,000"):
        text8.prepare(tmp_path, tmp_path / "t8b")  # the standard split checks the file is complete
    xml = "<page><title>Ünïcode</title> text\n</page>\n".encode() * 30
    (tmp_path / "enwik8").write_bytes(xml)
    enwik8.prepare(tmp_path, tmp_path / "e8", valid=37, test=41)
    parts = [(tmp_path / "e8" / f"{s}.txt").read_bytes() for s in ("train", "valid", "test")]
    assert b"".join(parts) == xml and len(parts[2]) == 41
    ids = read_byte_stream(tmp_path / "e8" / "valid.txt")
    assert ids.tolist() == ByteTokenizer().encode(parts[1]) and ids.numel() == 37
