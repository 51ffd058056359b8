"""How `recur` reports a failure: the user's errors in one line (exit 2), bugs with their traceback
(exit 1), Ctrl-C in one line (exit 130); `recur --debug` shows the traceback of user errors too."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
import yaml

import toolkit.cli.layers
from toolkit.cli.main import main
from toolkit.errors import ConfigError, UserError


@pytest.fixture
def layers_raises(monkeypatch):
    """Make `recur layers` raise the given exception."""
    monkeypatch.delenv("RECUR_DEBUG", raising=False)

    def make(err: BaseException) -> None:
        def run(args):
            raise err

        monkeypatch.setattr(toolkit.cli.layers, "run", run)

    return make


def stderr_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def test_a_bug_shows_its_traceback_and_exits_1(layers_raises, capsys):
    layers_raises(RuntimeError("boom in the middle of the code"))
    assert main(["layers"]) == 1
    err = stderr_lines(capsys)
    assert err[0] == "Traceback (most recent call last):"
    assert "RuntimeError: boom in the middle of the code" in err
    assert any("toolkit/cli/main.py" in line for line in err)  # the frames are there
    assert err[-1].startswith("recur layers: internal error: RuntimeError (traceback above)")


@pytest.mark.parametrize("err", [ValueError("too many values to unpack"), KeyError("hidden_size"), TypeError("x")])
def test_builtin_errors_are_bugs_not_user_errors(layers_raises, capsys, err):
    layers_raises(err)
    assert main(["layers"]) == 1
    assert stderr_lines(capsys)[0] == "Traceback (most recent call last):"


@pytest.mark.parametrize("err", [UserError("manifest x.jsonl not found: run `recur prep` first"),
                                 ConfigError("--jobs must be a positive integer")])
def test_a_user_error_is_one_line_without_traceback(layers_raises, capsys, err):
    layers_raises(err)
    assert main(["layers"]) == 2
    assert stderr_lines(capsys) == [f"recur layers: error: {err}"]


def test_a_missing_or_unreadable_path_is_a_user_error(layers_raises, capsys):
    layers_raises(FileNotFoundError(errno.ENOENT, "No such file or directory", "data/train.jsonl"))
    assert main(["layers"]) == 2
    assert stderr_lines(capsys) == ["recur layers: error: data/train.jsonl: No such file or directory"]
    layers_raises(PermissionError(errno.EACCES, "Permission denied", "/exp/cmvn.json"))
    assert main(["layers"]) == 2
    assert stderr_lines(capsys) == ["recur layers: error: /exp/cmvn.json: Permission denied"]
    layers_raises(OSError(errno.EIO, "Input/output error"))  # no path: not something the user named
    assert main(["layers"]) == 1


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback_of_a_user_error(layers_raises, capsys, monkeypatch, how):
    layers_raises(UserError("bad input"))
    if how == "env":
        monkeypatch.setenv("RECUR_DEBUG", "1")
    assert main(["--debug", "layers"] if how == "flag" else ["layers"]) == 2
    err = stderr_lines(capsys)
    assert err[0] == "Traceback (most recent call last):" and "toolkit.errors.UserError: bad input" in err
    assert err[-1] == "recur layers: error: bad input"


def test_ctrl_c_is_one_line_and_exit_130(layers_raises, capsys):
    layers_raises(KeyboardInterrupt())
    assert main(["layers"]) == 130
    assert stderr_lines(capsys) == ["recur layers: interrupted"]
    assert main(["--debug", "layers"]) == 130
    assert "Traceback (most recent call last):" in stderr_lines(capsys)


def test_a_command_that_fails_to_set_up_keeps_its_traceback_and_spares_the_others(monkeypatch, capsys):
    def configure(parser):
        raise NameError("name 'argparse_typo' is not defined")

    monkeypatch.setattr(toolkit.cli.layers, "configure", configure)
    assert main(["layers"]) == 1
    err = stderr_lines(capsys)
    assert err[0] == "Traceback (most recent call last):" and "NameError: name 'argparse_typo' is not defined" in err
    with pytest.raises(SystemExit) as done:
        main(["report", "--help"])
    assert done.value.code == 0


def test_a_command_module_that_fails_to_import_is_listed_and_raises_when_used(monkeypatch, capsys):
    import importlib

    real = importlib.import_module

    def import_module(name, *args):
        if name == "toolkit.cli.layers":
            raise ImportError("cannot import name 'gone' from 'toolkit.nn'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", import_module)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "unavailable: ImportError" in capsys.readouterr().out
    assert main(["layers", "--hidden-size", "8"]) == 1
    err = stderr_lines(capsys)
    assert "ImportError: cannot import name 'gone' from 'toolkit.nn'" in err


def test_fit_reports_a_config_value_a_class_refuses_in_one_line(tmp_path, capsys):
    config = {
        "exp_dir": str(tmp_path / "exp"),
        "model": {"class_path": "toolkit.tasks.seq.SeqTask",
                  "init_args": {"input_size": 2, "num_outputs": 1, "encoder": "no_such_layer", "hidden_size": 4}},
        "data": {"class_path": "toolkit.seqdata.adding.AddingData", "init_args": {"seq_len": 5}},
        "trainer": {"accelerator": "cpu", "max_steps": 1},
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(tmp_path / "bad.yaml")]) == 2
    err = [line for line in stderr_lines(capsys) if "Seed set to" not in line]  # Lightning's log line
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("recur fit: error: the config's toolkit.tasks.seq.SeqTask: unknown encoder "
                             "'no_such_layer'")
    assert not (tmp_path / "exp").exists()


def test_fit_keeps_the_traceback_of_a_value_error_raised_while_training(monkeypatch, capsys):
    import toolkit.train.cli

    def fit(args):
        raise ValueError("shapes do not match")

    monkeypatch.setattr(toolkit.train.cli, "fit", fit)
    assert main(["fit", "--config", "x.yaml"]) == 1
    err = stderr_lines(capsys)
    assert err[0] == "Traceback (most recent call last):" and "ValueError: shapes do not match" in err


@pytest.fixture
def adding_config(tmp_path):
    config = {
        "exp_dir": str(tmp_path / "exp"),
        "model": {"class_path": "toolkit.tasks.seq.SeqTask",
                  "init_args": {"input_size": 2, "num_outputs": 1, "loss": "mse", "encoder": "indrnn",
                                "hidden_size": 4}},
        "data": {"class_path": "toolkit.seqdata.adding.AddingData", "init_args": {"seq_len": 5}},
        "trainer": {"accelerator": "cpu", "max_steps": 1, "enable_progress_bar": False},
    }  # fmt: skip
    path = tmp_path / "adding.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def recur(*argv: str) -> subprocess.CompletedProcess:
    """`recur` as a user runs it: its own process, so Lightning's logging writes to that process's stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "toolkit.cli.main", *argv], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--model.init_args.hiden_size", "8"], "SeqTask has no option 'hiden_size' (did you mean hidden_size?)"),
        (["--trainer.max_stepz", "3"], "unknown option 'trainer.max_stepz' (did you mean trainer.max_steps?)"),
        (["--trainer.max_time", "1m"], "trainer.max_time '1m': give DD:HH:MM:SS"),
        (["--model.init_args.lr", "-1"], "lr must be positive"),
        (["--model.init_args.optimizer", "adamm"], "unknown optimizer 'adamm'"),
    ],
)
def test_fit_refuses_bad_keys_and_values_in_one_line_before_making_anything(adding_config, extra, expected):
    out = recur("fit", "--config", str(adding_config), *extra)
    err = [line for line in out.stderr.splitlines() if line.startswith("recur") or "Traceback" in line]
    assert out.returncode == 2 and len(err) == 1 and expected in err[0], out.stderr
    assert "Traceback" not in out.stderr and "usage:" not in out.stderr
    assert not (adding_config.parent / "exp").exists()  # checked before the experiment folder is made


def test_fit_names_every_missing_required_value(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"trainer": {"max_steps": 1}}))
    out = recur("fit", "--config", str(tmp_path / "c.yaml"))
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "recur fit: error: missing required value(s): data, exp_dir, model (set them in the config or as --KEY VALUE)"
    ]


def test_threads_below_one_is_refused(capsys):
    assert main(["--threads", "0", "layers"]) == 2
    assert stderr_lines(capsys) == ["recur: error: --threads 0: give at least 1 (or leave it out)"]
