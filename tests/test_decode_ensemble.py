"""Posterior fusion of several CTC models (toolkit.decode.ensemble, ``recur decode --model A --model B``)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from toolkit.cli.main import main
from toolkit.data.tokenizer import SymbolTokenizer
from toolkit.decode.ensemble import CTCEnsemble
from toolkit.errors import UserError
from toolkit.train.cli import fit


class Fixed(nn.Module):
    """A stand-in CTC model whose log-probs are given."""

    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor, symbols=("a", "b"), factor: int = 3):
        super().__init__()
        self.log_probs, self.lengths = log_probs, lengths
        self.tokenizer = SymbolTokenizer(list(symbols))
        self.hparams = SimpleNamespace(feat_dim=80, subsampling="stack", subsampling_factor=factor)
        self.sampling_rate = 16000

    def forward(self, feats, feat_lens):
        return self.log_probs, self.lengths


def random_log_probs(seed: int, shape=(2, 5, 5)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).log_softmax(-1)


def test_fusions_follow_their_equations_element_by_element():
    a, b = random_log_probs(0), random_log_probs(1)
    lengths = torch.tensor([5, 3])
    feats = torch.zeros(2, 15, 80)
    prob, _ = CTCEnsemble([Fixed(a, lengths), Fixed(b, lengths)], "prob")(feats, lengths * 3)
    logprob, out_lens = CTCEnsemble([Fixed(a, lengths), Fixed(b, lengths)], "logprob")(feats, lengths * 3)
    assert torch.equal(out_lens, lengths)
    for i in range(2):
        for t in range(5):
            mean_log = [(a[i, t, k].item() + b[i, t, k].item()) / 2 for k in range(5)]
            norm = math.log(sum(math.exp(x) for x in mean_log))
            for k in range(5):
                pa, pb = math.exp(a[i, t, k].item()), math.exp(b[i, t, k].item())
                assert prob[i, t, k].item() == pytest.approx(math.log((pa + pb) / 2), abs=1e-12)
                assert logprob[i, t, k].item() == pytest.approx(mean_log[k] - norm, abs=1e-12)
    # both are distributions over the tokens at every frame
    assert torch.allclose(prob.exp().sum(-1), torch.ones(2, 5, dtype=torch.float64))
    assert torch.allclose(logprob.exp().sum(-1), torch.ones(2, 5, dtype=torch.float64))


def test_models_that_do_not_share_tokens_or_frames_are_refused():
    a, lengths = random_log_probs(0), torch.tensor([5, 5])
    with pytest.raises(UserError, match="tokenizer"):
        CTCEnsemble([Fixed(a, lengths), Fixed(a, lengths, symbols=("a", "c"))])
    with pytest.raises(UserError, match="subsampling"):
        CTCEnsemble([Fixed(a, lengths), Fixed(a, lengths, factor=4)])
    other = CTCEnsemble([Fixed(a, lengths), Fixed(a, torch.tensor([5, 4]))])
    with pytest.raises(UserError, match="output frames"):
        other(torch.zeros(2, 15, 80), lengths * 3)


def test_decode_with_an_ensemble_of_trained_models(tmp_path, capsys, asr_corpus, asr_config):
    fit(["--config", str(asr_config(tmp_path, max_steps=8))])
    exp = tmp_path / "exp/res_indrnn"
    test = str(tmp_path / "test.jsonl")
    capsys.readouterr()
    assert main(["decode", "--model", str(exp), test, "--out", str(tmp_path / "one.txt")]) == 0
    # a model fused with itself is that model: the same transcripts
    for fusion in ("prob", "logprob"):
        out = tmp_path / f"two_{fusion}.txt"
        assert (
            main(["decode", "--model", str(exp), "--model", str(exp), "--fusion", fusion, test, "--out", str(out)]) == 0
        )
        assert out.read_text() == (tmp_path / "one.txt").read_text()

    # recording an ensemble's scores needs a folder of its own; it never writes into a member's
    capsys.readouterr()
    assert main(["decode", "--model", str(exp), "--model", str(exp), test, "--set", "test"]) == 2
    assert "--exp-dir" in capsys.readouterr().err
    ens = tmp_path / "exp/ensemble"
    before = json.loads((exp / "metrics.json").read_text())
    assert main(["decode", "--model", str(exp), "--model", str(exp), test, "--set", "test", "--beam", "4",
                 "--exp-dir", str(ens)]) == 0  # fmt: skip
    assert (ens / "decode/test_beam4/errs.txt").read_text().startswith("%WER")
    assert "test_beam4/wer" in json.loads((ens / "metrics.json").read_text())["final"]
    assert json.loads((exp / "metrics.json").read_text()) == before
