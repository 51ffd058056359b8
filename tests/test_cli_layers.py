"""`recur layers` and the CLI's error handling."""

import subprocess
import sys

from toolkit import nn as rnn
from toolkit.cli.main import main


def test_layers_prints_one_row_per_layer(capsys):
    assert main(["layers"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in out[2:]}
    assert list(rows) == rnn.available()
    count = rnn.num_params("lstm", 80, 256, 2)
    assert f"{count:,}" in rows["lstm"] and "Hochreiter" in rows["lstm"]


def test_bad_argument_is_one_line_error(capsys):
    assert main(["layers", "--hidden-size", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--hidden-size" in err[0] and "Traceback" not in err[0]


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "toolkit.cli.main", "--help"], capture_output=True, text=True, check=True
    )
    assert "layers" in out.stdout
