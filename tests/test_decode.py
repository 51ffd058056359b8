"""CTC decoding (greedy, beam, KenLM lexicon, shallow fusion with a recurrent-style LM) and scoring."""

from __future__ import annotations

import math

import pytest
import torch

from toolkit.decode import BeamConfig, CTCBeamSearch, FusionLM, greedy_ctc, score, write_lexicon, write_scoring
from toolkit.decode.ngram import NGramLM

SYMBOLS = ["<blank>", " ", "a", "b", "c", "t"]


def emissions(frames: list[dict[str, float]]) -> torch.Tensor:
    """(1, T, V) log-probs; each frame gives probabilities for some symbols, the rest share what is left."""
    rows = []
    for frame in frames:
        rest = (1.0 - sum(frame.values())) / (len(SYMBOLS) - len(frame))
        rows.append([math.log(frame.get(s, rest)) for s in SYMBOLS])
    return torch.tensor([rows])


def spell(text: str, ambiguous: dict[int, dict[str, float]] | None = None) -> torch.Tensor:
    frames = []
    for i, ch in enumerate(text):
        frames.append((ambiguous or {}).get(i, {ch: 0.9}))
        frames.append({"<blank>": 0.9})
    return emissions(frames)


def test_greedy_merges_repeats_and_drops_blanks():
    lp = torch.log(torch.tensor([[[0.1, 0.9], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9], [0.9, 0.1]]]))
    assert greedy_ctc(lp) == [[1, 1]]
    assert greedy_ctc(lp, torch.tensor([2])) == [[1]]


def test_blank_penalty_lowers_only_the_blank_and_brings_back_deleted_tokens():
    from toolkit.decode.transcribe import lower_blank

    lp = emissions([{"<blank>": 0.6, "a": 0.35}, {"<blank>": 0.6, "b": 0.35}])
    assert greedy_ctc(lp) == [[]]  # the blank wins both frames: both tokens are deleted
    lowered = lower_blank(lp, 0.6)
    assert torch.equal(lowered[..., 1:], lp[..., 1:]) and torch.allclose(lowered[..., 0], lp[..., 0] - 0.6)
    assert greedy_ctc(lowered) == [[SYMBOLS.index("a"), SYMBOLS.index("b")]]  # log 0.6 - 0.6 < log 0.35
    assert greedy_ctc(lower_blank(lp, 0.4)) == [[]]  # log 0.6 - 0.4 > log 0.35
    assert lower_blank(lp, 0.0) is lp and lp[0, 0, 0] == pytest.approx(math.log(0.6))  # input untouched


def test_beam_without_lm_follows_the_acoustics():
    lp = spell("cat bat")
    assert CTCBeamSearch(SYMBOLS)(lp) == ["cat bat"]


class BigramLM:
    """A FusionLM over the decoder's symbols: after 'c', strongly expects 'a'; after 'ca', 'b'."""

    vocab_size = len(SYMBOLS)

    def initial_state(self, batch_size: int):
        return [torch.zeros(batch_size, dtype=torch.long)]  # the previous symbol (0: start)

    def next_log_probs(self, state):
        prev = state[0]
        table = torch.full((len(SYMBOLS), len(SYMBOLS)), 1.0)
        table[SYMBOLS.index("a"), SYMBOLS.index("b")] = 200.0  # "a" is followed by "b"
        return torch.log_softmax(torch.log(table[prev]), dim=-1)

    def advance(self, state, tokens):
        return [tokens.clone()]


def test_shallow_fusion_lets_the_lm_decide_an_ambiguous_frame():
    lp = spell("cat", ambiguous={2: {"t": 0.45, "b": 0.4}})
    assert isinstance(BigramLM(), FusionLM)
    plain = CTCBeamSearch(SYMBOLS)(lp)
    fused = CTCBeamSearch(
        SYMBOLS, lm=BigramLM(), lm_vocab={s: i for i, s in enumerate(SYMBOLS)}, config=BeamConfig(lm_weight=1.0)
    )(lp)
    assert plain == ["cat"] and fused == ["cab"]


def test_kenlm_with_lexicon_only_outputs_words_of_the_lexicon(tmp_path):
    arpa = NGramLM(["cab"] * 20 + ["cat"], order=2).write_arpa(tmp_path / "lm.arpa")
    lexicon = write_lexicon(["cab", "cat"], tmp_path / "lexicon.txt")
    lp = spell("cat", ambiguous={2: {"t": 0.45, "b": 0.4}})
    search = CTCBeamSearch(SYMBOLS, lexicon=lexicon, lm=arpa, config=BeamConfig(lm_weight=2.0))
    assert search(lp) == ["cab"]
    lp_other = spell("bat")  # not a word of the lexicon: the decoder can only choose among cab/cat
    assert search(lp_other)[0] in ("cab", "cat")
    # acoustics that stop inside a word ("ca"): a lexicon decoder gives whole words or nothing
    # (a narrow beam keeps no hypothesis that ends on a word; flashlight then returns the unfinished one)
    plain = CTCBeamSearch(SYMBOLS, lexicon=lexicon, lm=arpa, config=BeamConfig(lm_weight=0.0, beam_size=2))
    for text in ("ca", "cat ca"):
        assert set(plain(spell(text))[0].split()) <= {"cab", "cat"}


class WordLM:
    """A FusionLM over words: 'cab' is far likelier than 'cat' (ids: 0 <blank>, 1 <unk>, 2 <eos>, 3.., words)."""

    vocab = {"<blank>": 0, "<unk>": 1, "<eos>": 2, "cab": 3, "cat": 4}
    vocab_size = len(vocab)

    def initial_state(self, batch_size: int):
        return [torch.zeros(batch_size, dtype=torch.long)]

    def next_log_probs(self, state):
        table = torch.tensor([1e-3, 1e-3, 0.1, 0.8, 0.1])
        return torch.log(table / table.sum()).expand(state[0].shape[0], -1)

    def advance(self, state, tokens):
        return [tokens.clone()]


def test_word_lm_fusion_scores_whole_words_through_the_lexicon(tmp_path):
    lexicon = write_lexicon(["cab", "cat", "tab"], tmp_path / "lexicon.txt")  # "tab" is not in the LM: <unk>
    lp = spell("cat", ambiguous={2: {"t": 0.45, "b": 0.4}})
    calls = []

    class Recording(WordLM):
        def advance(self, state, tokens):
            calls.extend(tokens.tolist())
            return super().advance(state, tokens)

    lm = Recording()
    fused = CTCBeamSearch(SYMBOLS, lexicon=lexicon, lm=lm, lm_vocab=WordLM.vocab, lm_unk_id=1, lm_end_id=2,
                          config=BeamConfig(lm_weight=1.0))  # fmt: skip
    plain = CTCBeamSearch(SYMBOLS, lexicon=lexicon)
    assert plain(lp) == ["cat"] and fused(lp) == ["cab"]
    # the LM saw word ids, never character ids: cab/cat by their own ids, the unknown "tab" as <unk>
    assert set(calls) <= {1, 3, 4} and {3, 4} <= set(calls)


def test_sentencepiece_beam_with_and_without_a_lexicon(tmp_path):
    from toolkit.data.tokenizer import train_tokenizer

    tok = train_tokenizer("bpe", ["the cat sat on the mat", "a dog ran far away"] * 50, vocab_size=30)
    symbols = tok.symbols
    ids = tok.encode("the cat sat")
    frames = []
    for i in ids:  # each piece, then a blank
        frames += [[0.9 if j == i else 0.1 / (len(symbols) - 1) for j in range(len(symbols))],
                   [0.9 if j == 0 else 0.1 / (len(symbols) - 1) for j in range(len(symbols))]]  # fmt: skip
    lp = torch.log(torch.tensor([frames]))
    assert CTCBeamSearch(symbols)(lp) == ["the cat sat"]
    lexicon = write_lexicon(["the", "cat", "sat", "mat"], tmp_path / "lex.txt", tok.pieces)
    assert "cat\t\u2581c at" in lexicon.read_text()
    arpa = NGramLM(["the cat sat"] * 5, order=2).write_arpa(tmp_path / "lm.arpa")
    assert CTCBeamSearch(symbols, lexicon=lexicon, lm=arpa)(lp) == ["the cat sat"]


def test_scoring_counts_by_hand(tmp_path):
    refs = {"u1": "a b c d", "u2": "", "u3": "x y"}
    hyps = {"u1": "a x c d e", "u2": "extra", "u3": ""}
    counts, align = score(refs, hyps)
    # u1: 1 substitution (b->x) + 1 insertion (e); u2: 1 insertion; u3: 2 deletions; 6 reference words
    assert (counts.sub, counts.ins, counts.dele, counts.ref_words) == (1, 2, 2, 6)
    assert counts.wer == pytest.approx(5 / 6)
    assert ("substitute", "b", "x") in align["u1"]
    # characters: u1 "a b c d" (7) vs "a x c d e": 1 sub + 2 ins; u2: 5 ins; u3: "x y" 3 del
    assert (counts.char_errors, counts.ref_chars) == (3 + 5 + 3, 7 + 0 + 3)
    figures = write_scoring(refs, hyps, tmp_path / "dec", name="test")
    assert figures["wer"] == pytest.approx(5 / 6)
    errs = (tmp_path / "dec/errs.txt").read_text()
    assert errs.startswith("%WER 83.33% [ 5 / 6, 2 ins, 2 del, 1 sub ]")
    assert "u1:\ta (b->x) c d (*->e)" in errs and "1   b -> x" in errs
    recogs = (tmp_path / "dec/recogs.txt").read_text().splitlines()
    assert recogs[:2] == ["u1\tref=a b c d", "u1\thyp=a x c d e"]
    assert "wer\t0.8333" in (tmp_path / "dec/wer_summary.txt").read_text()


def test_ngram_is_normalised_and_discounts():
    lm = NGramLM(["a b c", "a b d", "a c", "b"], order=3)
    vocab = [w for (w,) in lm.counts[1] if w != "<s>"]
    for history in [(), ("a",), ("<s>", "a"), ("a", "b"), ("zzz",)]:
        total = sum(lm.prob((*history, w)) for w in vocab)
        assert total == pytest.approx(1.0), history
    # "a b" was seen twice, followed by c and d once each: interpolated, not maximum likelihood
    assert 0.0 < lm.prob(("a", "b", "c")) < 0.5 + lm.backoff(("a", "b"))


def arpa_prob(path, gram):
    """p(gram) read back from an ARPA file by the backoff rule a decoder applies."""
    table, section = {}, 0
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.endswith("-grams:"):
            section = int(line[1])
        elif section and line and not line.startswith("\\"):
            fields = line.split("\t")
            table[tuple(fields[1].split())] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
    gram, backoff = tuple(gram), 0.0
    while gram not in table:
        backoff += table.get(gram[:-1], (0.0, 0.0))[1]
        gram = gram[1:]
    return 10 ** (table[gram][0] + backoff)


@pytest.mark.parametrize("smoothing", ["absolute", "kn"])
def test_ngram_arpa_file_gives_the_model_probabilities(tmp_path, smoothing):
    sentences = ["a b c", "a b d", "a c", "b", "c a b"]
    lm = NGramLM(sentences, order=3, smoothing=smoothing)
    path = lm.write_arpa(tmp_path / "lm.arpa")
    vocab = [w for (w,) in lm.counts[1] if w != "<s>"]
    for history in [("<s>",), ("a",), ("<s>", "a"), ("a", "b"), ("c", "c"), ("zzz", "a")]:
        for w in vocab:
            h = tuple(x if (x,) in lm.counts[1] or x == "<s>" else "<unk>" for x in history)
            assert arpa_prob(path, (*h, w)) == pytest.approx(lm.prob((*history, w)), rel=1e-5), (history, w)
        assert sum(lm.prob((*history, w)) for w in vocab) == pytest.approx(1.0), history


def test_kneser_ney_unigrams_are_continuation_counts():
    # bigrams: <s> x (3), x y (3), y </s> (3), <s> z, z w, w </s>; y follows one distinct word, </s> two
    sentences = ["x y"] * 3 + ["z w"]
    kn = NGramLM(sentences, order=2, smoothing="kn")
    absolute = NGramLM(sentences, order=2)
    # continuation counts x 1, y 1, </s> 2, z 1, w 1, <unk> 1 (its own count): total 7
    assert kn.prob(("y",)) == pytest.approx(1 / 7) and kn.prob(("</s>",)) == pytest.approx(2 / 7)
    # raw counts x 3, y 3, </s> 4, z 1, w 1, <unk> 1: total 13
    assert absolute.prob(("y",)) == pytest.approx(3 / 13)
    # the highest order keeps its own counts: x y seen 3 times out of 3, discounted by D
    d = kn.discount[2]
    assert kn.prob(("x", "y")) == pytest.approx((3 - d) / 3 + d * 1 / 3 * kn.prob(("y",)))


def test_ngram_perplexity_by_hand():
    lm = NGramLM(["a b", "b a", "a a b"], order=2, smoothing="kn")
    ppl, words, unknown = lm.perplexity(["a b", "b q"])
    logs = [lm.prob(g) for g in [("<s>", "a"), ("a", "b"), ("b", "</s>"), ("<s>", "b"), ("b", "<unk>"),
                                  ("<unk>", "</s>")]]  # fmt: skip
    assert (words, unknown) == (6, 1)
    assert ppl == pytest.approx(math.exp(-sum(math.log(p) for p in logs) / 6))


def test_word_tokens_are_joined_with_spaces():
    """Word or phone models (word_sep None): each token is a word of the output."""
    symbols = ["<blank>", "<unk>", "<eos>", "aa", "b", "sil"]
    lp = torch.full((1, 6, len(symbols)), -9.0)
    for t, i in enumerate([3, 0, 4, 0, 5, 0]):
        lp[0, t, i] = 0.0
    assert CTCBeamSearch(symbols, word_sep=None)(lp.log_softmax(-1)) == ["aa b sil"]


def test_lexicon_for_a_model_without_a_word_separator(tmp_path):
    """A char model trained on one-word utterances (FSDD) has no space to emit: its lexicon spells
    words without the separator, or no word could ever be completed."""
    from toolkit.api.decoding import spelling
    from toolkit.data.tokenizer import train_tokenizer

    tok = train_tokenizer("char", ["cat", "cab"])
    assert " " not in tok.symbols
    lexicon = write_lexicon(["cab", "cat", "tab"], tmp_path / "lexicon.txt", spelling(tok, tok.symbols))
    assert lexicon.read_text().splitlines()[0] == "cab\tc a b"
    arpa = NGramLM(["cab", "cat", "tab"], order=2).write_arpa(tmp_path / "lm.arpa")
    frames = []
    for ch in "cat":  # c, blank, a, blank, t, blank
        frames += [[math.log(0.9 if s == ch else 0.1 / (len(tok.symbols) - 1)) for s in tok.symbols]]
        frames += [[math.log(0.9 if s == "<blank>" else 0.1 / (len(tok.symbols) - 1)) for s in tok.symbols]]
    search = CTCBeamSearch(tok.symbols, lexicon=lexicon, lm=arpa, config=BeamConfig(lm_weight=0.5))
    assert search(torch.tensor([frames])) == ["cat"]


def test_phone_model_decodes_words_through_a_pronunciation_lexicon(tmp_path):
    """A phone model (word tokenizer, no word separator) with ``word<TAB>phones`` lines: the decoder
    segments the phone stream into lexicon words, and the word LM settles an ambiguous phone."""
    symbols = ["<blank>", "<unk>", "<eos>", "k", "æ", "t", "b", "d", "ɔ", "ɡ"]
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("cab\tk æ b\ncat\tk æ t\ndog\td ɔ ɡ\n")
    arpa = NGramLM(["cab dog"] * 20 + ["cat dog"], order=2).write_arpa(tmp_path / "lm.arpa")

    def phones(seq, ambiguous=None):
        rows = []
        for i, p in enumerate(seq):
            probs = (ambiguous or {}).get(i, {p: 0.9})
            rest = (1.0 - sum(probs.values())) / (len(symbols) - len(probs))
            rows.append([math.log(probs.get(s, rest)) for s in symbols])
            rows.append([math.log(0.9 if s == "<blank>" else 0.1 / (len(symbols) - 1)) for s in symbols])
        return torch.tensor([rows])

    plain = CTCBeamSearch(symbols, word_sep=None, lexicon=lexicon, lm=arpa, config=BeamConfig(lm_weight=0.0))
    assert plain(phones(["k", "æ", "t", "d", "ɔ", "ɡ"])) == ["cat dog"]
    fused = CTCBeamSearch(symbols, word_sep=None, lexicon=lexicon, lm=arpa, config=BeamConfig(lm_weight=2.0))
    assert fused(phones(["k", "æ", "t", "d", "ɔ", "ɡ"], {2: {"t": 0.45, "b": 0.4}})) == ["cab dog"]
    assert plain(phones(["k", "æ", "t", "d", "ɔ", "ɡ"], {2: {"t": 0.45, "b": 0.4}})) == ["cat dog"]
