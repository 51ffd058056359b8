"""The examples in egs/ run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from toolkit.train.cli import fit

EGS = Path(__file__).resolve().parents[1] / "egs"


def run(*args: str) -> str:
    out = subprocess.run([sys.executable, str(EGS / args[0]), *args[1:]], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_use_layer():
    assert "res_indrnn encoder" in run("use_layer.py")


def test_decode_file(tmp_path, asr_corpus, asr_config):
    fit(["--config", str(asr_config(tmp_path, "lstm", max_steps=2))])
    out = run("decode_file.py", str(tmp_path / "exp/lstm"), str(tmp_path / "test0.wav"), str(tmp_path / "nope.wav"))
    assert out.splitlines()[0].startswith("skipped:") and "test0\t" in out and "real-time factor" in out


def test_train_lm_then_score_text(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(["the cat sat on the mat", "a dog ran in the park"] * 30) + "\n")
    out = run("train_lm.py", str(text), str(tmp_path / "lm"), "30")
    assert "bits per character" in out
    ckpt = tmp_path / "lm.ckpt"
    from lightning.pytorch import Trainer

    from toolkit.tasks.lm import LMTask

    model = LMTask(str(tmp_path / "lm/tokenizer"), hidden_size=16, num_layers=1)
    trainer = Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(ckpt)
    out = run("score_text.py", str(ckpt), "the cat sat", "sat cat the")
    lines = out.splitlines()
    assert len(lines) == 3 and all("bits" in line for line in lines[:2]) and "perplexity" in lines[2]


def test_stream_export_check(tmp_path, asr_corpus, asr_config):
    fit(["--config", str(asr_config(tmp_path, "res_indrnn", max_steps=2))])
    script, check = EGS / "stream_export_check.sh", tmp_path / "check"
    args = [str(tmp_path / "exp/res_indrnn"), str(tmp_path / "test.jsonl"), str(check)]
    out = subprocess.run(["bash", str(script), *args, "--beam", "4"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.splitlines()[-1] == "7 of 7 identical"
    decoded = (check / "decode.txt").read_text().splitlines()
    assert len(decoded) == len((tmp_path / "test.jsonl").read_text().splitlines())
    assert (check / "export/model.onnx").is_file()
    bad = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage:" in bad.stderr
