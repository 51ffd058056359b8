"""N-best rescoring: sentence log-probabilities of a real LM against its step-by-step equation, and
the re-ranking of a beam search's n-best list by first-pass score + weight x LM log-probability."""

from __future__ import annotations

import pytest
import torch
from test_decode import SYMBOLS, WordLM, spell

from toolkit.data.tokenizer import train_tokenizer
from toolkit.decode import BeamConfig, CTCBeamSearch, NBestRescorer, sentence_log_probs, write_lexicon
from toolkit.tasks.lm import LMTask

TEXT = ["the cat sat", "the dog sat", "a cat ran", "the cat ran", "a dog sat"]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("words")
    train_tokenizer("word", TEXT).save(folder)
    torch.manual_seed(0)
    return LMTask(str(folder), encoder="lstm", hidden_size=8, num_layers=1).eval()


def one_by_one(lm, ids: list[int], end_id: int) -> float:
    """log p(ids, </s>) by the chain rule, one token at a time from the initial state."""
    state, total = lm.initial_state(1), 0.0
    for token in [*ids, end_id]:
        total += float(lm.next_log_probs(state)[0, token])
        state = lm.advance(state, torch.tensor([token]))
    return total


def test_sentence_log_probs_follow_the_chain_rule_and_ignore_padding(lm):
    tok = lm.tokenizer
    sentences = [tok.encode(t) for t in ("the cat sat", "a dog", "the cat ran the dog sat", "")]
    batch = sentence_log_probs(lm, sentences, tok.eos_id)
    for ids, got in zip(sentences, batch, strict=True):
        assert float(got) == pytest.approx(one_by_one(lm, ids, tok.eos_id), abs=1e-5)
        # alone, without the longer sentences that pad it in the batch
        assert float(sentence_log_probs(lm, [ids], tok.eos_id)[0]) == pytest.approx(float(got), abs=1e-5)
    assert float(batch[3]) == pytest.approx(float(lm.next_log_probs(lm.initial_state(1))[0, tok.eos_id]), abs=1e-6)
    # without an end token only the words are scored
    no_end = sentence_log_probs(lm, sentences[:1], None)
    assert float(no_end[0]) > float(batch[0])


def test_rescoring_reranks_the_nbest_by_score_plus_weighted_lm(tmp_path):
    lexicon = write_lexicon(["cab", "cat", "tab"], tmp_path / "lexicon.txt")
    lp = spell("cat", ambiguous={2: {"t": 0.45, "b": 0.4}})
    search = CTCBeamSearch(SYMBOLS, lexicon=lexicon, config=BeamConfig(beam_size=16, nbest=5))
    first = search.nbest(lp)[0]
    texts = [t for t, _ in first]
    assert texts[0] == "cat" and "cab" in texts  # the acoustics prefer "cat"; "cab" is in the list
    word_ids = {"cab": 3, "cat": 4, "tab": 1}

    def encode(text: str) -> list[int]:
        return [word_ids[w] for w in text.split()]

    lm = WordLM()  # p(cab) = 0.8 / Z, p(cat) = 0.1 / Z, <unk> 1e-3 / Z, </s> 0.1 / Z
    for weight in (0.0, 0.1, 1.0):
        ranked = NBestRescorer(search, lm, encode, end_id=2, weight=weight).rerank(first)
        by_hand = {}
        for text, s in first:
            ids = encode(text)
            by_hand[text] = max(by_hand.get(text, -1e9), s + weight * one_by_one(lm, ids, 2))
        assert [t for t, _ in ranked] == sorted(by_hand, key=lambda t: -by_hand[t])
        for text, combined in ranked:
            assert combined == pytest.approx(by_hand[text], abs=1e-4)
    # a word score adds per word: two-word hypotheses gain twice what one-word ones do
    two = [("cat", -1.0), ("cab tab", -1.5)]
    plain = dict(NBestRescorer(search, lm, encode, 2, weight=0.5).rerank(two))
    bonus = dict(NBestRescorer(search, lm, encode, 2, weight=0.5, word_score=0.7).rerank(two))
    assert bonus["cat"] - plain["cat"] == pytest.approx(0.7)
    assert bonus["cab tab"] - plain["cab tab"] == pytest.approx(1.4)
    assert NBestRescorer(search, lm, encode, 2, weight=0.0)(lp) == ["cat"]
    assert NBestRescorer(search, lm, encode, 2, weight=1.0)(lp) == ["cab"]


def test_rescoring_keeps_each_text_once_with_its_best_score():
    rescorer = NBestRescorer(None, WordLM(), {"cab": [3], "cat": [4]}.__getitem__, end_id=2, weight=0.0)
    ranked = rescorer.rerank([("cat", -1.0), ("cab", -2.0), ("cat", -0.5)])
    assert ranked == [("cat", -0.5), ("cab", -2.0)]
    assert rescorer.rerank([]) == []
