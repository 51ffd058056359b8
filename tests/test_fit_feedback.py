"""What ``recur fit`` tells its user: one line per validation in a log (no progress-bar redraws), no
third-party deprecation notices or tips (``recur --debug`` shows them), one summary line at the end, and
Ctrl-C saves ``last.ckpt`` at a step boundary, says how to resume, exits 130, and the resume is exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# Lightning's log handler keeps the stderr of whoever imports it first: imported here, at collection, not
# inside a test whose captured stream a later test would find closed
import lightning.pytorch  # noqa: F401
import torch
import yaml
from fit_fixtures import TINY_ADDING, one_thread  # noqa: F401 (autouse)
from lightning.pytorch import Callback

from toolkit.cli.fit import summary_line
from toolkit.cli.main import main
from toolkit.train.progress import figures_line, format_figure

ROOT = Path(__file__).resolve().parents[1]

CONFIG = {"seed_everything": 0, **TINY_ADDING}


def write_config(tmp_path: Path, name: str) -> Path:
    """``tmp_path/<name>.yaml``: :data:`CONFIG` with the experiment folder ``tmp_path/exp/<name>``."""
    cfg = dict(CONFIG, exp_dir=str(tmp_path / "exp" / name))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def recur(*args: str, out: Path) -> subprocess.Popen:
    """``recur ARGS`` in a new process, standard output and error into the file ``out`` (not a terminal)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with open(out, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "toolkit.cli.main", "--threads", "1", *args], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=ROOT)  # fmt: skip


def test_a_log_holds_one_line_per_validation_and_ends_with_the_summary(tmp_path):
    cfg = yaml.safe_load(write_config(tmp_path, "run").read_text())
    cfg["trainer"]["enable_progress_bar"] = True  # asked for, but a log is not a terminal
    # an old option name: the toolkit's own deprecation warning must still show
    cfg["model"]["init_args"]["encoder_opts"]["batch_norm"] = None
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    log = tmp_path / "log"
    assert recur("fit", "--config", str(tmp_path / "run.yaml"), out=log).wait(timeout=300) == 0
    text = log.read_text()
    lines = text.splitlines()
    assert "\r" not in text and "it/s" not in text  # no progress bar
    assert "is deprecated" not in text and "LeafSpec" not in text and "Tip" not in text
    assert "'batch_norm' is now called 'norm'" in text
    validations = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in validations] == ["4", "8", "12"]
    assert all("val/mse " in line and line.endswith("]") for line in validations)
    assert "Test metric" not in text  # Lightning's table: replaced by one line
    assert any(line.startswith("test (best.ckpt): ") and "test/mse" in line for line in lines)
    metrics = json.loads((tmp_path / "exp/run/metrics.json").read_text())
    best = metrics["best"]
    assert lines[-1] == (
        f"recur fit: done: best val/mse {best['value']:.4g} at step {best['step']} "
        f"(test/mse {metrics['final']['test/mse']:.4g}); model: {tmp_path / 'exp/run'} (checkpoints/best.ckpt)"
    )


def test_debug_shows_what_is_silenced(tmp_path):
    log = tmp_path / "log"
    cfg = write_config(tmp_path, "debug")
    assert recur("--debug", "fit", "--config", str(cfg), "--trainer.max_steps", "4", "--test", "false",
                 out=log).wait(timeout=300) == 0  # fmt: skip
    text = log.read_text()
    assert "isinstance(treespec, LeafSpec)` is deprecated" in text and "Tip: For seamless" in text


def test_figures_print_as_recur_decode_prints_them():
    assert format_figure("val/wer", 0.1234) == "val/wer 12.34%"
    assert format_figure("test/cer", 0.05) == "test/cer 5.00%"
    assert format_figure("val/err", 1.5) == "val/err 1.50%"  # SeqTask logs its error rate in percent
    assert figures_line({"val/wer": 0.5, "val/loss": 2.0}) == "val/loss 2  val/wer 50.00%"


def test_the_summary_says_how_to_use_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = tmp_path / "exp" / "am"
    metrics = {
        "task": "toolkit.tasks.asr.CTCTask", "exp_dir": str(exp), "train": {"steps": 900},
        "best": {"monitor": "val/wer", "mode": "min", "value": 0.123, "step": 900,
                 "path": str(exp / "checkpoints" / "best.ckpt")},
        "final": {"test/wer": 0.131, "test/cer": 0.05},
    }  # fmt: skip
    assert summary_line(metrics) == (
        "recur fit: done: best val/wer 12.30% at step 900 (test/wer 13.10%); model: exp/am (checkpoints/best.ckpt); "
        "decode: recur decode --model exp/am AUDIO..."
    )
    lm = dict(metrics, task="toolkit.tasks.lm.LMTask", best=dict(metrics["best"], monitor="val/ppl", value=123.4),
              final={})  # fmt: skip
    assert summary_line(lm).endswith("best val/ppl 123.4 at step 900; model: exp/am (checkpoints/best.ckpt); "
                                     "evaluate: recur lm eval --model exp/am --text TEXT")  # fmt: skip
    unvalidated = dict(metrics, best=None)
    assert summary_line(unvalidated).startswith("recur fit: done: 900 steps, no dev figure; model: exp/am "
                                                "(checkpoints/last.ckpt)")  # fmt: skip


class SigintAt(Callback):
    """Sends this process SIGINT (what Ctrl-C does) at the end of optimiser step ``step``."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_saves_last_between_validations_and_the_resume_is_exact(tmp_path, capfd):
    # capfd: the notice is written straight to file descriptor 2 (from the signal handler)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN, not Python's handler, in a job started with `&`
    straight = write_config(tmp_path, "straight")
    assert main(["fit", "--config", str(straight), "--trainer.max_steps", "20"]) == 0
    cut = yaml.safe_load(write_config(tmp_path, "cut").read_text())
    cut["trainer"]["callbacks"] = [{"class_path": f"{__name__}.SigintAt", "init_args": {"step": 6}}]
    (tmp_path / "cut.yaml").write_text(yaml.safe_dump(cut))
    capfd.readouterr()
    assert main(["fit", "--config", str(tmp_path / "cut.yaml"), "--trainer.max_steps", "20"]) == 130
    err = capfd.readouterr().err
    exp = tmp_path / "exp" / "cut"
    assert "Ctrl-C: stopping after this training step" in err
    assert err.splitlines()[-1] == (
        f"recur fit: interrupted; saved {exp}/checkpoints/last.ckpt at step 6; resume with: "
        f"recur fit --config {exp}/config.yaml --ckpt_path last"
    )
    assert torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 6
    # Ctrl-C works as before once fit is over
    assert signal.getsignal(signal.SIGINT) is before
    # the command it printed resumes the run (the saved config still names SigintAt, which fires at step
    # 6 only) and it ends as the uninterrupted run did
    assert main(["fit", "--config", str(exp / "config.yaml"), "--ckpt_path", "last"]) == 0
    a = json.loads((tmp_path / "exp/straight/metrics.json").read_text())
    b = json.loads((exp / "metrics.json").read_text())
    assert [h["step"] for h in b["history"]] == [4, 8, 12, 16, 20]
    for ha, hb in zip(a["history"], b["history"], strict=True):
        assert ha["val/mse"] == hb["val/mse"], (ha, hb)
    assert a["final"] == b["final"] and b["train"]["items"] == 20 * 8


class SigintBeforeTraining(Callback):
    """Sends this process SIGINT during the sanity check, before training starts."""

    def on_sanity_check_start(self, trainer, pl_module):
        os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_before_training_exits_130_and_says_nothing_was_saved(tmp_path, capsys):
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN, not Python's handler, in a job started with `&`
    cfg = yaml.safe_load(write_config(tmp_path, "early").read_text())
    cfg["trainer"]["callbacks"] = [{"class_path": f"{__name__}.SigintBeforeTraining"}]
    (tmp_path / "early.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", str(tmp_path / "early.yaml")]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "recur fit: interrupted; nothing was saved to resume from: the same command starts the run again"
    )
    # Lightning ignores Ctrl-C after handling one; fit gives the process its handler back
    assert signal.getsignal(signal.SIGINT) is before
    assert not (tmp_path / "exp/early/checkpoints/last.ckpt").exists()


def test_sigint_to_a_training_process_saves_and_says_how_to_resume(tmp_path):
    cfg = write_config(tmp_path, "long")
    log = tmp_path / "log"
    proc = recur("fit", "--config", str(cfg), "--trainer.max_steps", "1000000", out=log)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and "step 8 (" not in log.read_text():
        time.sleep(0.2)
    assert proc.poll() is None, log.read_text()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    text = log.read_text()
    exp = tmp_path / "exp" / "long"
    assert f"resume with: recur fit --config {exp}/config.yaml --ckpt_path last" in text.splitlines()[-1]
    assert "Traceback" not in text
    step = torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert 8 <= step < 1000000 and f"at step {step};" in text
    assert main(["fit", "--config", str(exp / "config.yaml"), "--ckpt_path", "last",
                 "--trainer.max_steps", str(step + 4)]) == 0  # fmt: skip
    assert json.loads((exp / "metrics.json").read_text())["train"]["steps"] == step + 4


def test_ctrl_c_stops_every_ddp_process_at_the_same_step(tmp_path):
    """Only rank 0 is signalled here (a terminal's Ctrl-C reaches them all, not always between the same
    steps): the ranks agree at each step, so the other one stops too instead of waiting forever in the
    next step's gradient all-reduce. Plain ``ddp`` on 2 CPU processes (gloo): the launcher re-runs the
    ``recur fit`` command line, here not pytest's."""
    cfg = write_config(tmp_path, "ddp")
    log = tmp_path / "log"
    proc = recur("fit", "--config", str(cfg), "--trainer.max_steps", "1000000", "--trainer.strategy", "ddp",
                 "--trainer.devices", "2", "--trainer.use_distributed_sampler", "false", out=log)  # fmt: skip
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and "step 8 (" not in log.read_text():
            time.sleep(0.2)
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()
        deadline = time.time() + 60  # and rank 1 has ended too, not hung in an all-reduce
        while time.time() < deadline and processes_naming(str(cfg)):
            time.sleep(0.5)
        assert not processes_naming(str(cfg))
    finally:  # whatever failed, no training is left behind
        for pid in processes_naming(str(cfg)):
            os.kill(pid, signal.SIGKILL)
    text = log.read_text()
    exp = tmp_path / "exp" / "ddp"
    step = torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert [line for line in text.splitlines() if "interrupted" in line] == [
        f"recur fit: interrupted; saved {exp}/checkpoints/last.ckpt at step {step}; resume with: "
        f"recur fit --config {exp}/config.yaml --ckpt_path last"
    ]
    assert text.count("Ctrl-C: stopping") == 1 and "Traceback" not in text


def processes_naming(word: str) -> list[int]:
    """The running processes whose command line has ``word`` (Linux)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace") if proc.name.isdigit() else ""
        except OSError:  # ended meanwhile
            continue
        if word in cmdline:
            found.append(int(proc.name))
    return found
