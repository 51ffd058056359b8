"""``recur fit --config CFG.yaml [--ckpt_path last] [--print_config] [--section.key=value ...]``."""

from __future__ import annotations

import argparse
import os
import re
import traceback
from pathlib import Path

COMMAND = "fit"
HELP = "train a model from a YAML config (LightningCLI); resume with --ckpt_path last"


def configure(parser: argparse.ArgumentParser) -> None:
    # Every argument, --help included, belongs to LightningCLI (jsonargparse), which knows the
    # classes the config names; argparse only hands the words over untouched.
    def pass_through(args=None, namespace=None):
        ns = namespace or argparse.Namespace()
        for key, value in parser._defaults.items():
            setattr(ns, key, value)
        ns.fit_args = list(args or [])
        return ns, []

    parser.parse_known_args = pass_through


def run(args: argparse.Namespace) -> int:
    from toolkit.errors import UserError
    from toolkit.train.cli import fit

    try:
        metrics = fit(args.fit_args)
    except ValueError as err:
        refusal = config_refusal(err)
        if refusal is None:
            raise
        raise UserError(refusal) from err
    if metrics is not None:  # None: --print_config
        print(summary_line(metrics))
    return 0


# how a trained model of each task is used: the command after "decode:" / "evaluate:" in the summary line
USES = {
    "toolkit.tasks.asr.CTCTask": ("decode", "recur decode --model {exp} AUDIO..."),
    "toolkit.tasks.lm.LMTask": ("evaluate", "recur lm eval --model {exp} --text TEXT"),
}


def summary_line(metrics: dict) -> str:
    """The line ``recur fit`` ends with: the best dev figure and where, the test figure, the model and
    how to use it, e.g. ``recur fit: done: best val/wer 12.30% at step 900 (test/wer 13.10%); model:
    exp/x (checkpoints/best.ckpt); decode: recur decode --model exp/x AUDIO...``."""
    from toolkit.train.progress import format_figure

    exp = _shown(metrics["exp_dir"])
    best = metrics.get("best") or {}
    parts = []
    if best.get("value") is not None:
        at = f" at step {best['step']}" if best.get("step") is not None else ""
        test_name = "test/" + best["monitor"].split("/", 1)[-1]
        test = metrics.get("final", {}).get(test_name)
        tested = f" ({format_figure(test_name, test)})" if test is not None else ""
        parts.append(f"best {format_figure(best['monitor'], best['value'])}{at}{tested}")
    else:
        parts.append(f"{metrics['train']['steps']} steps, no dev figure")
    checkpoint = Path(best["path"]) if best.get("path") else Path(metrics["exp_dir"]) / "checkpoints" / "last.ckpt"
    parts.append(f"model: {exp} ({os.path.relpath(checkpoint.resolve(), Path(metrics['exp_dir']).resolve())})")
    use = _use(metrics.get("task", ""))
    if use:
        parts.append(f"{use[0]}: {use[1].format(exp=exp)}")
    return "recur fit: done: " + "; ".join(parts)


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies inside it, else as it is."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _use(task: str) -> tuple[str, str] | None:
    """The entry of :data:`USES` for ``task`` (a class path) or for the task class it derives from."""
    import importlib

    module, _, name = task.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    for base in cls.__mro__:
        use = USES.get(f"{base.__module__}.{base.__qualname__}")
        if use:
            return use
    return None


def config_refusal(err: ValueError) -> str | None:
    """One line for a class of the config that refused its arguments, or None for any other ValueError.

    jsonargparse builds the config's classes (model, data, callbacks) and, when a constructor raises,
    reports it as a ValueError of its own ("Does not validate against any of the Union subtypes")
    that lists each candidate type's error: a bad value in the config (an unknown encoder, a missing
    tokenizer). Only such an error, raised by jsonargparse itself, is turned into one line; a
    ValueError raised anywhere else (while training, say) is a bug and keeps its traceback.
    """
    frames = traceback.extract_tb(err.__traceback__)
    if not frames or "jsonargparse" not in Path(frames[-1].filename).parts:
        return None
    text = str(err)
    given = re.search(r"class_path='([\w.]+)'", text)
    errors = text.split("\nErrors:\n", 1)[1].split("\nGiven value", 1)[0] if "\nErrors:\n" in text else ""
    reasons = [
        " ".join(line.strip().removeprefix("- ").split())
        for line in errors.splitlines()
        if line.strip() and "Expected a <class 'NoneType'>" not in line
    ]
    reason = "; ".join(reasons) or text.splitlines()[0]
    return f"the config's {given.group(1)}: {reason}" if given else f"the config: {reason}"
