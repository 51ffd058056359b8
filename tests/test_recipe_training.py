"""Recipes with real training on tiny data: killed with SIGKILL mid-training and run again, the
training resumes from its checkpoint and finishes; `--devices 2` trains with DDP on 2 CPU processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from toolkit.cli.main import main


def recipe(root, asr_config, max_steps: int):
    """A recipe training an LSTM on the toy corpus in ``root`` (the ``asr_corpus`` fixture)."""
    cfg = asr_config(root, "lstm", max_steps=max_steps)
    text = cfg.read_text().replace("devices: 1", "devices: 1\n  enable_checkpointing: true")
    cfg.write_text(text)
    path = root / "recipe.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            # tiny recipe for the tests
            name: tiny
            exp: {root}/exp
            models: [lstm]
            stages:
              - name: train
                per_model: true
                workdir: "{{exp}}/{{model}}"
                run: >-
                  recur --threads 1 fit --config {root}/{{model}}.yaml --exp_dir {{exp}}/{{model}}
                  --trainer.devices {{devices}} --checkpoint.every_n_train_steps 2
            """
        )
    )
    return path


def test_kill_9_mid_training_then_rerun_finishes(tmp_path, asr_corpus, asr_config):
    # enough steps that the run is still training when its first checkpoint appears: 120 steps of this
    # tiny model take about 1.4 s on a 2-core Xeon, so 120 could finish before the kill
    path = recipe(tmp_path, asr_config, max_steps=600)
    cmd = [sys.executable, "-m", "toolkit.cli.main", "run", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    last = tmp_path / "exp/lstm/checkpoints/last.ckpt"
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and the training process, mid-training
    proc.wait()
    killed_at = json.loads((tmp_path / "exp/lstm/metrics.json").read_text())["train"]["steps"] if (
        tmp_path / "exp/lstm/metrics.json").exists() else 0  # fmt: skip
    assert killed_at < 600
    # the rerun resumes from last.ckpt (not from scratch) and finishes with a result
    assert main(["run", str(path)]) == 0
    metrics = json.loads((tmp_path / "exp/lstm/metrics.json").read_text())
    assert metrics["train"]["steps"] == 600 and metrics["train"]["finished"]
    assert "test/wer" in metrics["final"]
    log = (tmp_path / "exp/logs/train-lstm.log").read_text()
    assert "--ckpt_path last" in log and "Restoring states from the checkpoint" in log


def test_devices_2_trains_with_ddp(tmp_path, asr_corpus, asr_config):
    path = recipe(tmp_path, asr_config, max_steps=4)
    assert main(["run", str(path), "--devices", "2"]) == 0
    metrics = json.loads((tmp_path / "exp/lstm/metrics.json").read_text())
    assert metrics["train"]["steps"] == 4 and "test/wer" in metrics["final"]
    log = (tmp_path / "exp/logs/train-lstm.log").read_text()
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log


def test_a_finished_recipe_with_real_stages_reruns_nothing(tmp_path, capsys, asr_corpus, asr_config):
    """CMVN statistics, tokenizer, training (which names the stats' cmvn.json) and decoding, for real: the
    second `recur run` finds every stage done and moves no training aside."""
    cfg = asr_config(tmp_path, "lstm", max_steps=4)
    path = tmp_path / "recipe.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            # tiny recipe for the tests
            name: tiny
            exp: {tmp_path}/exp
            models: [lstm]
            stages:
              - name: tokenizer
                run: recur tokenizer {tmp_path}/train.jsonl --kind char --out {{exp}}/tokenizer
              - name: stats
                run: recur stats {tmp_path}/train.jsonl --out {{exp}}/cmvn.json
              - name: train
                per_model: true
                workdir: "{{exp}}/{{model}}"
                run: >-
                  recur --threads 1 fit --config {cfg} --exp_dir {{exp}}/{{model}}
                  --model.init_args.tokenizer {{exp}}/tokenizer --data.init_args.tokenizer {{exp}}/tokenizer
                  --model.init_args.cmvn {{exp}}/cmvn.json
              - name: decode
                per_model: true
                run: recur --threads 1 decode --model {{exp}}/{{model}} {tmp_path}/test.jsonl --set test
            """
        )
    )
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "4 stage(s) run" in out
    # what the stages print, echoed: no progress-bar redraws (a stage's output is a pipe, not a terminal),
    # training's summary, and the decoded set's scores rather than its transcripts
    assert "\r" not in out and "recur fit: done: best val/wer " in out
    assert "recur decode: test: WER " in out and not any(line.startswith("test0\t") for line in out.splitlines())
    assert main(["run", str(path), "--list"]) == 0
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [
        ["tokenizer", "done"], ["stats", "done"], ["train[lstm]", "done"], ["decode[lstm]", "done"]
    ]  # fmt: skip
    assert main(["run", str(path)]) == 0
    assert "0 stage(s) run, 4 up to date" in capsys.readouterr().out
    assert not list((tmp_path / "exp").glob("*.stale-*"))
