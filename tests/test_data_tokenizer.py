"""Tokenizers: shared special ids, round trips, vocabulary cut-offs, unknown symbols, save/load."""

import pytest

from toolkit.data.tokenizer import ByteTokenizer, load_tokenizer, train_tokenizer
from toolkit.errors import UserError

TEXTS = ["the cat sat on the mat", "the dog ate the bone", "a cat and a dog", "The Cat, the Hat!"] * 5


@pytest.mark.parametrize("kind", ["char", "word", "bpe", "unigram"])
def test_roundtrip_and_special_ids(tmp_path, kind):
    tok = train_tokenizer(kind, TEXTS, vocab_size=30 if kind in ("bpe", "unigram") else None, lowercase=True,
                          remove_punct=True)
    for s in ("the cat sat on the mat", "a dog and the hat"):
        ids = tok.encode(s)
        assert all(i > 2 for i in ids), "0/1/2 are <blank>/<unk>/<eos>, never ordinary text"
        assert tok.decode(ids) == s
        assert tok.encode(s, eos=True) == ids + [tok.eos_id]
    assert tok.decode(tok.encode("The CAT!")) == "the cat"
    tok.save(tmp_path)
    back = load_tokenizer(tmp_path)
    assert back.kind == kind and back.vocab_size == tok.vocab_size
    assert back.encode("the dog ate the mat") == tok.encode("the dog ate the mat")


def test_char_tokenizer_reports_unencodable_symbols():
    tok = train_tokenizer("char", ["abc abc"])
    assert tok.vocab_size == 3 + 4  # specials + a b c space
    assert tok.unknown("abc") == [] and tok.unknown("abz é") == ["z", "é"]
    assert tok.encode("az") == [tok.encode("a")[0], tok.unk_id]


def test_word_vocabulary_cutoffs():
    texts = ["a a a a b b b c c d"]
    tok = train_tokenizer("word", texts, min_count=2)
    assert tok.symbols[3:] == ["a", "b", "c"]
    tok = train_tokenizer("word", texts, vocab_size=5)
    assert tok.symbols[3:] == ["a", "b"]
    assert tok.encode("a c d") == [3, tok.unk_id, tok.unk_id]
    assert tok.unknown("a c d") == ["c", "d"]


def test_sentencepiece_flags_characters_it_never_saw(tmp_path):
    tok = train_tokenizer("bpe", TEXTS, vocab_size=25, lowercase=True)
    assert tok.unknown("the cat") == []
    assert tok.unknown("the qat") == ["q"]


def test_byte_tokenizer_encodes_anything():
    tok = ByteTokenizer()
    text = "naïve 東京 <xml/>"
    ids = tok.encode(text)
    assert len(ids) == len(text.encode("utf-8")) and min(ids) >= 3 and tok.vocab_size == 259
    assert tok.decode(ids) == text and tok.unknown(text) == []


def test_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_tokenizer(tmp_path)
    with pytest.raises(UserError, match="empty"):
        train_tokenizer("char", ["", "   "])
    with pytest.raises(UserError, match="unknown tokenizer kind"):
        train_tokenizer("phoneme", TEXTS)
