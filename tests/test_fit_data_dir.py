"""``recur fit --data_dir DIR``: a prepared folder's manifests, tokenizer, CMVN and feature settings in one
option; options given explicitly (command line or config file) win; what is missing is one line naming it."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest
import yaml

from toolkit.cli.main import main
from toolkit.data.dataset import compute_cmvn
from toolkit.data.features import Fbank
from toolkit.train.cli import fit
from toolkit.train.data_dir import expand_data_dir

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["--config", str(ROOT / "recipes/folder/base.yaml"), "--config", str(ROOT / "recipes/folder/lstm.yaml")]


def data_folder(corpus, where: Path, rate: int = 8000, bins: int = 40) -> Path:
    """The toy corpus in the layout the folder recipe writes, its CMVN computed at ``rate`` / ``bins``."""
    (where / "data").mkdir(parents=True)
    for split in ("train", "dev", "test"):
        shutil.copy(corpus.root / f"{split}.jsonl", where / "data" / f"{split}.jsonl")
    shutil.copytree(corpus.root / "tokenizer", where / "tokenizer")
    compute_cmvn(corpus.sets["train"], Fbank(bins, rate), where / "cmvn.json", progress=False)
    return where


def resolved(args: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        fit([*args, "--print_config"])
    assert stop.value.code == 0
    return yaml.safe_load(out.getvalue())


def test_data_dir_fills_paths_and_features_and_explicit_options_win(asr_corpus, tmp_path):
    d = data_folder(asr_corpus, tmp_path / "prepared")
    cfg = resolved([*CONFIGS, "--exp_dir", str(tmp_path / "exp"), "--data_dir", str(d)])
    model, data = cfg["model"]["init_args"], cfg["data"]["init_args"]
    assert cfg["data_dir"] == str(d)
    for split in ("train", "dev", "test"):
        assert data[split] == str(d / f"data/{split}.jsonl")
    assert model["tokenizer"] == data["tokenizer"] == str(d / "tokenizer") and model["cmvn"] == str(d / "cmvn.json")
    # the features the statistics were computed with: 8 kHz, 40 mel bins (the class defaults are 16 kHz, 80)
    assert (model["feat_dim"], model["sampling_rate"]) == (data["num_mel_bins"], data["sampling_rate"]) == (40, 8000)

    # explicit on the command line, before or after --data_dir, or set in a config file: kept
    (tmp_path / "mine.yaml").write_text("model: {init_args: {feat_dim: 64}}\n")
    other = str(tmp_path / "other.jsonl")
    explicit = ["--config", str(tmp_path / "mine.yaml"), "--data.init_args.test", other]
    cfg = resolved([*CONFIGS, *explicit, "--exp_dir", str(tmp_path / "exp"), f"--data_dir={d}",
                    "--model.init_args.cmvn", "null"])  # fmt: skip
    model, data = cfg["model"]["init_args"], cfg["data"]["init_args"]
    assert data["test"] == other and data["train"] == str(d / "data/train.jsonl")
    assert model["feat_dim"] == 64 and model["cmvn"] is None
    assert model["sampling_rate"] == 16000  # features follow the folder's statistics only when the model uses them

    # without --data_dir nothing changes
    assert expand_data_dir(["--config", "x.yaml", "--exp_dir", "e"]) == ["--config", "x.yaml", "--exp_dir", "e"]


def test_data_dir_missing_folder_or_file_is_one_line_naming_the_fix(asr_corpus, tmp_path, capsys):
    args = ["fit", *CONFIGS, "--exp_dir", str(tmp_path / "exp")]
    assert main([*args, "--data_dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recur fit: error: --data_dir") and "nowhere: no such folder" in err and "\n" not in err
    assert "recur prep folder" in err

    d = data_folder(asr_corpus, tmp_path / "prepared")
    (d / "cmvn.json").unlink()
    assert main([*args, "--data_dir", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"no {d / 'cmvn.json'}; compute it with recur stats" in err and "\n" not in err
    shutil.rmtree(d / "tokenizer")
    assert main([*args, "--data_dir", str(d), "--model.init_args.cmvn", "null"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"no tokenizer folder {d / 'tokenizer'}; make it with recur tokenizer" in err and "\n" not in err
    assert not (tmp_path / "exp").exists()  # refused before anything was made
