"""``recur layers``: the recurrent layers the toolkit can build, with equation, paper and size."""

from __future__ import annotations

import argparse

COMMAND = "layers"
HELP = "list the recurrent layers: name, equation, paper, parameter count"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-size", type=int, default=80, help="input features for the count")
    parser.add_argument("--hidden-size", type=int, default=256, help="hidden units for the count")
    parser.add_argument("--num-layers", type=int, default=2, help="layers for the count")


def table(input_size: int, hidden_size: int, num_layers: int) -> str:
    from toolkit import nn as rnn

    head = f"params ({input_size}->{hidden_size}, {num_layers} layers)"
    rows = [("name", head, "equation", "paper")]
    for name in rnn.available():
        info = rnn.info(name)
        count = rnn.num_params(name, input_size, hidden_size, num_layers)
        rows.append((name, f"{count:,}", info.equation, info.paper))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join([r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2]), r[3]]))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 5)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from toolkit.errors import ConfigError

    for key in ("input_size", "hidden_size", "num_layers"):
        if getattr(args, key) < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be a positive integer")
    print(table(args.input_size, args.hidden_size, args.num_layers))
    return 0
