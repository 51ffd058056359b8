"""Dynamic evaluation (Krause et al. 2018; ``recur lm eval --dynamic-lr LR --dynamic-decay D``): each
window of the text is scored first, then the model takes one SGD step on it, pulled back towards its
original weights by D."""

from __future__ import annotations

import copy
import re

import pytest
import torch
import torch.nn.functional as F

from toolkit.cli.main import main
from toolkit.nn.base import detach_state
from toolkit.tasks.lm import LMTask
from toolkit.tasks.lm_eval import score_text


@pytest.fixture
def lm(lm_corpus):
    torch.manual_seed(0)
    return LMTask(str(lm_corpus / "words"), encoder="lstm", hidden_size=8, num_layers=1).eval()


@pytest.fixture
def text(lm_corpus) -> list[str]:
    """The held-out lines three times over: a text a model can adapt to as it reads."""
    return (lm_corpus / "test.txt").read_text().splitlines() * 3


def weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_rate_zero_is_the_static_score_and_leaves_the_model_alone(lm, text):
    before = weights(lm)
    static = score_text(lm, text, bptt=8, progress=False)
    off = score_text(lm, text, bptt=8, dynamic_lr=0.0, dynamic_decay=0.5, progress=False)
    assert off.nll == static.nll and off.sentences == static.sentences and off.tokens == static.tokens
    assert all(torch.equal(a, b) for a, b in zip(before, weights(lm), strict=True))


def test_each_window_is_scored_then_learnt_from_by_one_sgd_step_pulled_back_by_the_decay(lm, text):
    lr, decay, bptt = 0.5, 0.1, 8
    by_hand = copy.deepcopy(lm)
    static = score_text(copy.deepcopy(lm), text, bptt=bptt, progress=False)
    dynamic = score_text(lm, text, bptt=bptt, dynamic_lr=lr, dynamic_decay=decay, progress=False)

    tok = by_hand.tokenizer
    ids = torch.tensor([tok.eos_id] + [i for line in text for i in tok.encode(line, eos=True)]).view(1, -1)
    originals = weights(by_hand)
    total, state = 0.0, None
    for start in range(0, ids.shape[1] - 1, bptt):
        x, y = ids[:, start : start + bptt], ids[:, start + 1 : start + 1 + bptt]
        x = x[:, : y.shape[1]]
        logits, state = by_hand(x, None, state)
        nll = F.cross_entropy(logits[0], y[0], reduction="none")
        total += float(nll.detach().double().sum())
        by_hand.zero_grad()
        nll.mean().backward()
        with torch.no_grad():
            for p, p0 in zip(by_hand.parameters(), originals, strict=True):
                stepped = p - lr * p.grad
                p.copy_(stepped + decay * (p0 - stepped))
        state = detach_state(state)
    assert dynamic.tokens == static.tokens == ids.shape[1] - 1
    assert dynamic.nll == pytest.approx(total, rel=1e-5)
    # the first window (8 tokens: the first two lines, 4 tokens each) is scored by the untouched model,
    # the next by the model after one step ...
    assert dynamic.sentences[:2] == pytest.approx(static.sentences[:2], rel=1e-6)
    assert dynamic.sentences[2] != pytest.approx(static.sentences[2], rel=1e-3)
    # ... and the adapted model ends up with other weights than it started with
    assert any(not torch.equal(a, b) for a, b in zip(originals, weights(lm), strict=True))


def test_adapting_to_a_repetitive_text_lowers_its_perplexity(lm, text):
    static = score_text(copy.deepcopy(lm), text, bptt=8, progress=False)
    dynamic = score_text(copy.deepcopy(lm), text, bptt=8, dynamic_lr=1.0, progress=False)
    assert dynamic.ppl < 0.9 * static.ppl
    # the last repetition gains most: by then the model has read the same lines twice
    third = len(text) // 3
    assert sum(dynamic.sentences[2 * third :]) < sum(static.sentences[2 * third :]) - 1.0


def test_decay_one_pulls_every_step_back_to_the_original_weights(lm, text):
    before = weights(lm)
    static = score_text(copy.deepcopy(lm), text, bptt=8, progress=False)
    anchored = score_text(lm, text, bptt=8, dynamic_lr=1.0, dynamic_decay=1.0, progress=False)
    assert anchored.nll == pytest.approx(static.nll, rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(before, weights(lm), strict=True))


def test_recur_lm_eval_dynamic_lr_reports_the_adapted_perplexity(lm, lm_corpus, text, tmp_path, capsys):
    from lightning.pytorch import Trainer

    ckpt = tmp_path / "lm.ckpt"
    trainer = Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(lm)
    trainer.save_checkpoint(ckpt)
    (tmp_path / "text.txt").write_text("\n".join(text) + "\n")
    capsys.readouterr()
    args = ["lm", "eval", "--model", str(ckpt), "--text", str(tmp_path / "text.txt"), "--bptt", "8"]
    assert main(args) == 0
    assert main([*args, "--dynamic-lr", "1.0"]) == 0
    static_line, dynamic_line = capsys.readouterr().out.splitlines()[-2:]
    static, dynamic = (float(re.search(r"perplexity ([\d.]+)", line).group(1)) for line in (static_line, dynamic_line))
    assert static == pytest.approx(score_text(copy.deepcopy(lm), text, bptt=8, progress=False).ppl, abs=1e-3)
    assert dynamic == pytest.approx(score_text(lm, text, bptt=8, dynamic_lr=1.0, progress=False).ppl, abs=1e-3)
    assert dynamic < 0.9 * static
