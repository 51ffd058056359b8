"""``recur fit`` end to end on a tiny adding-problem config: folder layout, metrics.json, exact resume."""

import json

import pytest
import torch
import yaml
from fit_fixtures import TINY_ADDING, one_thread  # noqa: F401 (autouse)

from toolkit.cli.main import main

CONFIG = {**TINY_ADDING, "trainer": {**TINY_ADDING["trainer"], "enable_progress_bar": False}}


def write_config(tmp_path, exp_dir):
    cfg = dict(CONFIG, exp_dir=str(exp_dir))
    path = tmp_path / f"{exp_dir.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def fit(*args):
    return main(["fit", *map(str, args)])


def test_fit_writes_config_checkpoints_and_metrics(tmp_path):
    exp = tmp_path / "exp" / "adding" / "indrnn"
    assert fit("--config", write_config(tmp_path, exp)) == 0
    assert (exp / "checkpoints" / "last.ckpt").is_file() and (exp / "checkpoints" / "best.ckpt").is_file()
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["exp_dir"] == str(exp) and saved["model"]["init_args"]["hidden_size"] == 8
    m = json.loads((exp / "metrics.json").read_text())
    assert [h["step"] for h in m["history"]] == [4, 8, 12]
    assert all(h["wall_s"] > 0 and "val/mse" in h for h in m["history"])
    assert m["train"]["steps"] == 12 and m["train"]["items"] == 12 * 8 and m["train"]["finished"]
    assert m["train"]["item_unit"] == "sequences" and m["train"]["items_per_s"] > 0
    assert m["params"]["total"] == sum(p.numel() for p in torch.load(
        exp / "checkpoints" / "best.ckpt", weights_only=False)["state_dict"].values())
    assert m["best"]["monitor"] == "val/mse"
    assert m["best"]["value"] == min(h["val/mse"] for h in m["history"])
    assert set(m["final"]) == {"test/loss", "test/mse"}
    assert m["hardware"].startswith("cpu:") and m["config"]["data"]["seq_len"] == 12
    # the saved config reruns as is: the folder now holds a run, so a fresh start is refused
    assert fit("--config", exp / "config.yaml", "--ckpt_path", "null") == 2


def test_resume_continues_at_the_saved_step_exactly(tmp_path, capsys):
    straight = tmp_path / "straight"
    assert fit("--config", write_config(tmp_path, straight), "--trainer.max_steps", 20) == 0
    split = tmp_path / "split"
    cfg = write_config(tmp_path, split)
    assert fit("--config", cfg) == 0  # stops at 12
    assert torch.load(split / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 12
    assert fit("--config", cfg, "--trainer.max_steps", 20, "--ckpt_path", "last") == 0
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((split / "metrics.json").read_text())
    assert [h["step"] for h in b["history"]] == [4, 8, 12, 16, 20]
    assert b["train"]["steps"] == 20 and b["train"]["items"] == 20 * 8
    # same data, same optimiser state, same weights: the resumed run is the uninterrupted one
    assert [h["val/mse"] for h in b["history"]] == [h["val/mse"] for h in a["history"]]
    assert b["final"] == a["final"]
    assert len(list((split / "logs").iterdir())) == 2  # one CSV log per session, none overwritten


def test_null_for_one_key_of_a_dict_option_is_none_not_a_string(tmp_path):
    # jsonargparse hands this override over as the string 'None'; the indrnn layer then fails comparing
    # it with 0 (its own check of input_std), so a string reaching it stops the run
    exp = tmp_path / "null"
    cfg = write_config(tmp_path, exp)
    assert fit("--config", cfg, "--model.init_args.encoder_opts.input_std", "null", "--trainer.max_steps", 4) == 0
    opts = yaml.safe_load((exp / "config.yaml").read_text())["model"]["init_args"]["encoder_opts"]
    assert opts == {"gamma": 2.0, "max_len": 12, "input_std": None}


def test_resume_at_its_limit_tests_and_keeps_the_history(tmp_path):
    # a run cut off by hand is tested by resuming it with max_steps = its step: no training, same record
    exp = tmp_path / "cut"
    cfg = write_config(tmp_path, exp)
    assert fit("--config", cfg) == 0
    before = json.loads((exp / "metrics.json").read_text())
    (exp / "metrics.json").unlink()
    assert fit("--config", cfg, "--trainer.max_steps", 12, "--ckpt_path", "last") == 0
    after = json.loads((exp / "metrics.json").read_text())
    assert after["history"] == before["history"]
    # wall_s is the last checkpoint's (saved a moment before training ended): within that moment
    assert after["train"]["wall_s"] == pytest.approx(before["train"]["wall_s"], abs=0.5)
    for key in ("steps", "items", "batch_s", "finished"):
        assert after["train"][key] == before["train"][key], key
    assert after["final"] == before["final"] and after["best"]["step"] == before["best"]["step"]


def test_metrics_record_the_commit_the_run_started_from(tmp_path, monkeypatch):
    from toolkit.train import metrics_file

    commits = iter(["abc1234", *["def5678-dirty"] * 100])  # the checkout moves on after the start
    monkeypatch.setattr(metrics_file, "source_commit", lambda: next(commits))
    exp = tmp_path / "c"
    assert fit("--config", write_config(tmp_path, exp)) == 0
    assert json.loads((exp / "metrics.json").read_text())["commit"] == "abc1234"


def test_resume_without_a_checkpoint_is_an_error_not_a_fresh_start(tmp_path, capsys):
    exp = tmp_path / "empty"
    assert fit("--config", write_config(tmp_path, exp), "--ckpt_path", "last") == 2
    err = capsys.readouterr().err
    assert "no checkpoint at" in err and len(err.strip().splitlines()) == 1
    assert not (exp / "metrics.json").exists()


def test_print_config_shows_the_resolved_classes(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        fit("--config", write_config(tmp_path, tmp_path / "p"), "--print_config")
    assert stop.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == "toolkit.tasks.seq.SeqTask"
    assert printed["checkpoint"]["every_n_train_steps"] == 0
    assert not (tmp_path / "p").exists()


def test_missing_config_file_is_one_line(tmp_path, capsys):
    assert fit("--config", tmp_path / "absent.yaml") == 2
    err = capsys.readouterr().err.strip()
    assert "absent.yaml: no such file" in err and len(err.splitlines()) == 1
