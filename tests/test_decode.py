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
        SYMBOLS, lm=BigramLM(), lm_token_ids=list(range(len(SYMBOLS))), config=BeamConfig(lm_weight=1.0)
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
