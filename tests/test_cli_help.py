"""``--help`` tells a newcomer what to type: every option says what it does and its default, ``recur run
RECIPE --help`` names the stages ``--stage`` takes, the encoder option names the layers."""

from __future__ import annotations

import argparse
from pathlib import Path

# Lightning's log handler keeps the stderr of whoever imports it first: imported here, at collection, not
# inside a test whose captured stream a later test would find closed
import lightning.pytorch  # noqa: F401
import pytest

import toolkit.nn as rnn
from toolkit.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def options(parser: argparse.ArgumentParser, name: str = "recur"):
    """(command, parser, action) for every option of every command and sub-command (``recur lm eval``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from options(sub, f"{name} {sub_name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield name, parser, action


def has_default(action: argparse.Action) -> bool:
    value = action.default
    return not (value is None or value is False or value in ("", [], argparse.SUPPRESS))


def shown(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The option's help as ``--help`` prints it (before line wrapping)."""
    return parser._get_formatter()._expand_help(action)


ALL = list(options(build_parser()))


def test_every_option_has_help_and_shows_its_default():
    assert len({command for command, _, _ in ALL}) > 20  # the walk reached the sub-commands
    missing = [f"{c} {a.option_strings or a.dest}" for c, _, a in ALL if not (a.help or "").strip()]
    assert not missing, f"options without help: {missing}"
    for command, parser, action in ALL:
        text = shown(parser, action)
        if has_default(action) and (action.option_strings or action.nargs in ("?", "*")):
            assert "(default: " in text, f"{command} {action.option_strings}: {text!r}"
        # one way of saying it everywhere: "(default: X)", never "(default X)" or "X (default)"
        if "default" in text:
            assert "(default: " in text, f"{command} {action.option_strings}: {text!r}"


def test_the_default_shown_is_the_real_one(capsys):
    with pytest.raises(SystemExit):
        main(["decode", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "beam size; 0 = greedy (default: 0)" in out
    assert "LM weight in beam search (default: 0.5)" in out
    assert "cpu or cuda (default: cpu)" in out


@pytest.mark.parametrize("action", ["eval", "sample"])
def test_lm_actions_have_descriptions(action, capsys):
    with pytest.raises(SystemExit) as done:
        main(["lm", action, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    description = " ".join(out.split("\n\n")[1].split())
    assert "language model" in description


def test_run_help_lists_the_recipe_stages(capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    assert "recur run RECIPE --help` also lists RECIPE's stages" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["run", str(ROOT / "recipes/synth/recipe.yaml"), "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    table = out.split("--stage/--stop-stage take these names):\n", 1)[1].splitlines()
    names = [line.split()[0] for line in table if line.strip()]
    assert names == ["prep", "tokenizer", "stats", "train_lm", "train", "decode_lm", "report"]
    assert any(line.split()[:3] == ["train", "per", "model"] for line in table)
    # a recipe that cannot be read still gets the options (the error comes when it runs)
    with pytest.raises(SystemExit) as done:
        main(["run", "no/such/recipe.yaml", "--help"])
    assert done.value.code == 0 and "--stop-stage" in capsys.readouterr().out


def test_fit_help_names_the_layers_and_defaults(capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--model.help", "toolkit.tasks.asr.CTCTask"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    encoder = out.split("--model.encoder ENCODER", 2)[-1].split("--model.hidden_size")[0]
    assert all(name in encoder for name in rnn.available()), encoder
    assert "default: res_indrnn" in encoder and "recur layers" in encoder
