"""How `recur` reports a failure: the user's errors in one line (exit 2), bugs with their traceback
(exit 1), Ctrl-C in one line (exit 130); `recur --debug` shows the traceback of user errors too."""

from __future__ import annotations

import errno

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
