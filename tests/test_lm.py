"""Language models: perplexity against a hand computation, stateful training with recur fit,
evaluation and sampling from the command line, and use as a fusion LM in beam search."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
import torch

from toolkit.cli.main import main
from toolkit.data.manifest import write_manifest
from toolkit.decode import BeamConfig, CTCBeamSearch, FusionLM
from toolkit.tasks.lm import LMTask
from toolkit.tasks.lm_eval import score_text
from toolkit.train.cli import fit


@pytest.fixture
def corpus(lm_corpus):
    """conftest's ``lm_corpus`` (text splits, ``words/`` and ``chars/`` tokenizers) under this file's name."""
    return lm_corpus


def test_perplexity_is_total_nll_over_all_predicted_tokens(corpus):
    torch.manual_seed(0)
    model = LMTask(str(corpus / "words"), encoder="indrnn", hidden_size=8, num_layers=1).eval()
    lines = ["the cat sat", "a dog", "zebra cat zebra"]  # 'zebra' is out of vocabulary, twice
    score = score_text(model, lines, bptt=3, progress=False)
    # by hand: feed <eos> w1 ... one token at a time, carrying the state; sum -log p(next)
    tok = model.tokenizer
    ids = [tok.eos_id] + [i for line in lines for i in tok.encode(line, eos=True)]
    nll, state = 0.0, None
    with torch.no_grad():
        for prev, nxt in zip(ids[:-1], ids[1:], strict=True):
            logits, state = model(torch.tensor([[prev]]), None, state)
            nll -= logits[0, -1].log_softmax(-1)[nxt].item()
    assert score.tokens == len(ids) - 1 == 3 + 1 + 2 + 1 + 3 + 1
    assert score.nll == pytest.approx(nll, rel=1e-5)
    assert score.ppl == pytest.approx(math.exp(nll / score.tokens), rel=1e-5)
    assert score.oov == 2 and sum(score.sentences) == pytest.approx(nll, rel=1e-5)


def lm_config(root, tokenizer, encoder, regime="stream"):
    cfg = root / f"lm_{encoder}_{regime}.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            exp_dir: {root}/exp/{encoder}_{regime}
            trainer: {{max_epochs: 3, accelerator: cpu, devices: 1, enable_progress_bar: false,
                       use_distributed_sampler: false, log_every_n_steps: 1}}
            model:
              class_path: toolkit.tasks.lm.LMTask
              init_args: {{tokenizer: {root}/{tokenizer}, encoder: {encoder}, hidden_size: 16, num_layers: 2,
                           lr: 0.01, weight_dropout: 0.1, emb_dropout: 0.05}}
            data:
              class_path: toolkit.data.lm_datamodule.LMDataModule
              init_args: {{train: {root}/train.txt, valid: {root}/valid.txt, test: {root}/test.txt,
                          tokenizer: {root}/{tokenizer}, regime: {regime}, batch_size: 4, bptt: 5,
                          eval_batch_size: 2}}
            """
        )
    )
    return cfg


@pytest.mark.parametrize(("encoder", "regime"), [("res_indrnn", "stream"), ("lstm", "sentence")])
def test_fit_lowers_perplexity_and_eval_cli(corpus, capsys, encoder, regime):
    summary = fit(["--config", str(lm_config(corpus, "words", encoder, regime))])
    history = summary["history"]
    assert history[-1]["val/ppl"] < history[0]["val/ppl"] < 20 and "test/ppl" in summary["final"]
    exp = corpus / "exp" / f"{encoder}_{regime}"
    # validation runs at each epoch end: best.ckpt must follow the dev figure there too
    assert (exp / "checkpoints" / "best.ckpt").exists()
    assert summary["best"]["value"] == pytest.approx(min(h["val/ppl"] for h in history))
    capsys.readouterr()
    assert main(["lm", "eval", "--model", str(exp), "--text", str(corpus / "test.txt"), "--set", "test_stream",
                 "--scores", str(corpus / "scores.tsv")]) == 0  # fmt: skip
    assert "perplexity" in capsys.readouterr().out
    assert len((corpus / "scores.tsv").read_text().splitlines()) == 11
    assert "test_stream/ppl" in json.loads((exp / "metrics.json").read_text())["final"]
    # a speech manifest is scored on its transcripts, as the same sentences in a text file
    lines = (corpus / "test.txt").read_text().splitlines()
    entries = [{"id": f"u{i}", "audio_filepath": f"u{i}.wav", "duration": 1.0, "sampling_rate": 16000, "text": t}
               for i, t in enumerate(lines)]  # fmt: skip
    write_manifest(corpus / "test.jsonl", entries)
    for text in ("test.txt", "test.jsonl"):
        assert main(["lm", "eval", "--model", str(exp), "--text", str(corpus / text)]) == 0
    by_text, by_manifest = capsys.readouterr().out.splitlines()[-2:]
    assert by_text.split(": ", 2)[2] == by_manifest.split(": ", 2)[2] and "0 out-of-vocabulary" in by_manifest
    assert main(["lm", "sample", "--model", str(exp), "--max-tokens", "5"]) == 0


def test_char_lm_is_a_fusion_lm_for_beam_search(corpus):
    torch.manual_seed(0)
    lm = LMTask(str(corpus / "chars"), encoder="indrnn", hidden_size=8, num_layers=1).eval()
    assert isinstance(lm, FusionLM)
    state = lm.initial_state(3)
    assert lm.next_log_probs(state).shape == (3, lm.vocab_size)
    torch.testing.assert_close(lm.next_log_probs(state).exp().sum(-1), torch.ones(3))
    # the decoder's symbols map to the LM's by their text
    symbols = ["<blank>", " ", "a", "c", "t"]
    frames = torch.log(torch.tensor([[0.05, 0.05, 0.05, 0.8, 0.05], [0.8, 0.05, 0.05, 0.05, 0.05],
                                     [0.05, 0.05, 0.8, 0.05, 0.05]]))[None]  # fmt: skip
    out = CTCBeamSearch(symbols, lm=lm, lm_vocab=lm.tokenizer.index, lm_end_id=lm.tokenizer.eos_id,
                        config=BeamConfig(lm_weight=0.3))(frames)  # fmt: skip
    assert out == ["ca"]


def test_a_diverged_model_reports_nan_not_perplexity_one(corpus):
    model = LMTask(str(corpus / "words"), encoder="lstm", hidden_size=8, num_layers=1).eval()
    with torch.no_grad():
        model.embed.weight.fill_(float("nan"))
    x = torch.tensor([[3, 4, 5]])
    model.step((x, x), "val")
    nll, tokens = model.nll["val_"].compute(), model.tokens["val_"].compute()
    assert torch.isnan(nll) and tokens == 3  # NaN is kept, so the perplexity is NaN, never exp(0) = 1


def test_eval_line_gives_one_bpc_for_a_character_model():
    from toolkit.cli.lm import eval_summary
    from toolkit.tasks.lm_eval import TextScore

    # 10 characters predicted at 1 bit each; the text has 20 characters counting PTB's spaces
    score = TextScore(nll=10 * math.log(2), tokens=10, chars=20)
    line = eval_summary("test.txt", score, per_char=True)
    assert line.endswith("perplexity 2.000; 1.0000 bits per character") and line.count("bits") == 1
    line = eval_summary("test.txt", score, per_char=False)
    assert "1.0000 bits per token" in line and line.endswith("0.5000 bits per character of the text")
