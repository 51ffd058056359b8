"""Fixtures shared by several test files: the toy spoken corpus (and its training config) of the speech
tests, and the small text corpus (with word and character tokenizers) of the language-model tests.

Every fixture writes into the test's own ``tmp_path``; nothing is downloaded. Plain helpers with no
setup to share stay in ``audio_fixtures.py`` (tones, bad audio) and ``layer_reference.py``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# The toy spoken language: each word is one tone (Hz), so a tiny model learns it in a few steps.
TOY_WORDS = {"ab": 300.0, "ba": 700.0, "aa": 1200.0}

# The LM tests' text: a tiny word language, repeated so a model can learn it.
LM_TEXT = ["the cat sat", "the dog sat", "a cat ran", "the cat ran", "a dog sat"] * 8


def _utterance(path: Path, words, sr: int = 16000, seed: int = 0) -> dict:
    """One tone per word, 0.25 s each, with short gaps: a learnable toy 'language'. Writes ``path``
    and returns its manifest entry."""
    rng = np.random.default_rng(seed)
    parts = []
    for w in words:
        t = np.arange(int(0.25 * sr)) / sr
        parts += [0.3 * np.sin(2 * np.pi * TOY_WORDS[w] * t), np.zeros(int(0.05 * sr))]
    x = np.concatenate(parts) + 0.005 * rng.standard_normal(sum(len(p) for p in parts))
    sf.write(path, x, sr)
    return {"id": path.stem, "audio_filepath": str(path), "duration": len(x) / sr, "text": " ".join(words),
            "sampling_rate": sr}  # fmt: skip


@dataclass
class ToyCorpus:
    """The toy spoken corpus in ``root``: ``{train,dev,test}.jsonl`` (24/4/4 utterances of 1-2 words, WAVs
    beside them), a character tokenizer in ``root/tokenizer`` and CMVN statistics in ``root/cmvn.json``."""

    root: Path
    sets: dict[str, list[dict]]  # split -> its manifest entries
    words: dict[str, float] = field(default_factory=lambda: dict(TOY_WORDS))  # word -> its tone (Hz)

    @staticmethod
    def utterance(path: Path, words, sr: int = 16000, seed: int = 0) -> dict:
        """Another utterance of the toy language at ``path``; its manifest entry."""
        return _utterance(path, words, sr, seed)


def _make_toy_corpus(root: Path) -> ToyCorpus:
    from toolkit.data.dataset import compute_cmvn
    from toolkit.data.manifest import write_manifest
    from toolkit.data.tokenizer import train_tokenizer

    rng = np.random.default_rng(0)
    sets = {}
    for split, n in (("train", 24), ("dev", 4), ("test", 4)):
        entries = []
        for i in range(n):
            words = list(rng.choice(list(TOY_WORDS), size=int(rng.integers(1, 3))))
            entries.append(_utterance(root / f"{split}{i}.wav", words, seed=i))
        write_manifest(root / f"{split}.jsonl", entries)
        sets[split] = entries
    tok = train_tokenizer("char", [e["text"] for e in sets["train"]])
    tok.save(root / "tokenizer")
    compute_cmvn(sets["train"], path=root / "cmvn.json", progress=False)
    return ToyCorpus(root, sets)


def _write_asr_config(root: Path, encoder: str = "res_indrnn", max_steps: int = 8) -> Path:
    """``root/<encoder>.yaml``: a CTC model of ``encoder`` (32 units, 3 layers) on the toy corpus in
    ``root``, ``max_steps`` steps on the CPU, validated every 4; its experiment folder is
    ``root/exp/<encoder>``."""
    cfg = root / f"{encoder}.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            exp_dir: {root}/exp/{encoder}
            seed_everything: 0
            trainer:
              max_steps: {max_steps}
              val_check_interval: 4
              check_val_every_n_epoch: null
              accelerator: cpu
              devices: 1
              enable_progress_bar: false
              use_distributed_sampler: false
            model:
              class_path: toolkit.tasks.asr.CTCTask
              init_args:
                tokenizer: {root}/tokenizer
                cmvn: {root}/cmvn.json
                encoder: {encoder}
                hidden_size: 32
                num_layers: 3
                lr: 0.003
                warmup_steps: 2
            data:
              class_path: toolkit.data.speech_datamodule.SpeechDataModule
              init_args:
                train: {root}/train.jsonl
                dev: {root}/dev.jsonl
                test: {root}/test.jsonl
                tokenizer: {root}/tokenizer
                max_seconds: 6.0
            """
        )
    )
    return cfg


@pytest.fixture
def asr_corpus(tmp_path) -> ToyCorpus:
    """The toy spoken corpus, written into the test's ``tmp_path`` (see :class:`ToyCorpus`)."""
    return _make_toy_corpus(tmp_path)


@pytest.fixture
def asr_config():
    """``asr_config(root, encoder="res_indrnn", max_steps=8) -> Path``: writes the training config of a
    small CTC model on the toy corpus in ``root`` (use with ``asr_corpus``)."""
    return _write_asr_config


def _train_word_lm(root: Path) -> Path:
    """A word LM over the toy language (text in ``root/lm.txt``), trained for a few steps with recur fit;
    returns its experiment folder."""
    from toolkit.data.tokenizer import train_tokenizer
    from toolkit.train.cli import fit

    (root / "lm.txt").write_text("\n".join(["ab ba", "aa", "ba ab aa", "ab"] * 10) + "\n")
    train_tokenizer("word", (root / "lm.txt").read_text().splitlines()).save(root / "lm_words")
    cfg = root / "lm.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            exp_dir: {root}/exp/word_lm
            trainer: {{max_steps: 4, accelerator: cpu, devices: 1, enable_progress_bar: false}}
            model:
              class_path: toolkit.tasks.lm.LMTask
              init_args: {{tokenizer: {root}/lm_words, encoder: lstm, hidden_size: 8, num_layers: 1}}
            data:
              class_path: toolkit.data.lm_datamodule.LMDataModule
              init_args: {{train: {root}/lm.txt, valid: {root}/lm.txt, tokenizer: {root}/lm_words, batch_size: 2,
                          bptt: 4}}
            """
        )
    )
    fit(["--config", str(cfg)])
    return root / "exp/word_lm"


@pytest.fixture
def train_word_lm():
    """``train_word_lm(root) -> Path``: a word LM of the toy language trained in ``root/exp/word_lm``."""
    return _train_word_lm


@pytest.fixture(scope="module")
def trained_toy(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Shared by a module's tests: (root, CTC experiment, word-LM experiment): the toy corpus, a res_indrnn
    CTC model trained 8 steps on it, a word LM of its language and a word bigram ``root/bigram.arpa``."""
    from toolkit.cli.main import main
    from toolkit.train.cli import fit

    root = tmp_path_factory.mktemp("toy")
    _make_toy_corpus(root)
    fit(["--config", str(_write_asr_config(root))])
    lm = _train_word_lm(root)
    assert main(["ngram", str(root / "lm.txt"), "--order", "2", "--out", str(root / "bigram.arpa")]) == 0
    return root, root / "exp/res_indrnn", lm


@pytest.fixture
def lm_corpus(tmp_path) -> Path:
    """``tmp_path`` holding ``train.txt`` (``LM_TEXT``: 40 lines), ``valid.txt`` (its first 10) and
    ``test.txt`` (lines 5-14), and word and character tokenizers of ``LM_TEXT`` in ``words/`` and
    ``chars/``."""
    from toolkit.data.tokenizer import train_tokenizer

    for split, lines in (("train", LM_TEXT), ("valid", LM_TEXT[:10]), ("test", LM_TEXT[5:15])):
        (tmp_path / f"{split}.txt").write_text("\n".join(lines) + "\n")
    train_tokenizer("word", LM_TEXT).save(tmp_path / "words")
    train_tokenizer("char", LM_TEXT).save(tmp_path / "chars")
    return tmp_path
