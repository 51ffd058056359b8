"""``recur fit --data_dir DIR``: one option for a prepared data folder instead of seven paths.

The folder has the layout the recipes and the README tour write::

    DIR/data/train.jsonl, dev.jsonl, test.jsonl   manifests (an LM's train.txt, valid.txt, test.txt)
    DIR/tokenizer/                                recur tokenizer ... --out DIR/tokenizer
    DIR/cmvn.json                                 recur stats DIR/data/train.jsonl --out DIR/cmvn.json

:func:`expand_data_dir` turns ``--data_dir DIR`` into the ordinary options for what the config's model
and data classes take (``--data.init_args.train DIR/data/train.jsonl``, ``--model.init_args.cmvn ...``)
before LightningCLI parses them, so the resolved config, ``--print_config`` and the saved
``config.yaml`` show plain paths (and ``data_dir`` itself, for the record). Only what neither the
config files nor the command line give is filled (a ``null`` in a config counts as not given):
explicit options win. When the folder's ``cmvn.json`` is the one filled in, the feature settings
(``feat_dim``/``num_mel_bins``, ``sampling_rate``) not given elsewhere follow those it was computed
with, so 8 kHz audio trains on the 40 mel bins ``recur stats`` chose for it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from toolkit.errors import ConfigError, UserError

OPTION = "--data_dir"
SPLITS = ("train", "dev", "valid", "test")  # data init args that name a file in DIR/data
REQUIRED_SPLITS = ("train",)  # nothing trains without it; dev/valid/test are filled when present
CONFIG_FILES = {".yaml", ".yml", ".json"}
PREP_HINT = "recur prep folder --src AUDIO_DIR --out {dir}/data --dev-fraction 0.1 --test-fraction 0.1"


def _take_option(args: list[str]) -> tuple[str | None, list[str]]:
    """(the last ``--data_dir`` value or None, the arguments without any ``--data_dir``)."""
    value, rest, i = None, [], 0
    while i < len(args):
        word = args[i]
        if word == OPTION:
            if i + 1 >= len(args):
                raise ConfigError(f"{OPTION} needs a folder (the one prep, tokenizer and stats wrote into)")
            value, i = args[i + 1], i + 2
            continue
        if word.startswith(OPTION + "="):
            value = word.split("=", 1)[1]
        else:
            rest.append(word)
        i += 1
    return value, rest


def _configs(args: Sequence[str]) -> list[dict]:
    """The ``--config`` files' contents, in order (unreadable ones are left to LightningCLI to refuse)."""
    out = []
    for i, word in enumerate(args):
        path = args[i + 1] if word in ("--config", "-c") and i + 1 < len(args) else None
        if word.startswith("--config="):
            path = word.split("=", 1)[1]
        if path is None:
            continue
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict):
            out.append(loaded)
    return out


def _cli_value(args: Sequence[str], keys: Sequence[str]) -> tuple[bool, str | None]:
    """(whether the command line gives any of ``keys`` as ``--KEY VALUE`` or ``--KEY=VALUE``, the last value)."""
    found, value = False, None
    for i, word in enumerate(args):
        for key in keys:
            if word == f"--{key}":
                found, value = True, args[i + 1] if i + 1 < len(args) else None
            elif word.startswith(f"--{key}="):
                found, value = True, word.split("=", 1)[1]
    return found, value


def _section(config: dict, section: str) -> dict:
    value = config.get(section)
    return value if isinstance(value, dict) else {}


def _class_path(args: Sequence[str], configs: list[dict], section: str) -> str | None:
    """The class a section names: the command line's ``--model(.class_path) X`` or the last config's."""
    found, value = _cli_value(args, (f"{section}.class_path", section))
    # --model may also name a config file of the section or give it inline: then the class is in there
    if found and value and re.fullmatch(r"[A-Za-z_][\w.]*", value) and Path(value).suffix not in CONFIG_FILES:
        return value
    for config in reversed(configs):
        value = _section(config, section).get("class_path")
        if value:
            return str(value)
    return None


def _given(args: Sequence[str], configs: list[dict], section: str, name: str) -> bool:
    """Whether the command line gives ``section``'s ``name``, or a config file a non-null value for it."""
    if _cli_value(args, (f"{section}.init_args.{name}", f"{section}.{name}"))[0]:
        return True
    for config in configs:
        part = _section(config, section)
        init = part.get("init_args") if isinstance(part.get("init_args"), dict) else {}
        if init.get(name) is not None or part.get(name) is not None:
            return True
    return False


def _parameters(class_path: str | None, section: str) -> set[str]:
    """The constructor arguments of the class ``section`` names (what can be filled)."""
    module, _, name = (class_path or "").rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except (ImportError, AttributeError):
        cls = None
    if cls is None:
        raise ConfigError(
            f"{OPTION}: the config names no importable {section} class ({section}.class_path: {class_path}); "
            f"give --config files that set {section}.class_path to a full path, e.g. toolkit.tasks.asr.CTCTask"
        )
    return set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}


def _features(cmvn: Path) -> dict[str, Any]:
    """The feature settings ``cmvn.json`` was computed with (``recur stats`` records them)."""
    try:
        obj = json.loads(cmvn.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{cmvn} is unreadable ({err}); recompute it with recur stats") from None
    bins = obj.get("num_mel_bins", obj.get("dim"))
    return {"bins": bins, "rate": obj.get("sampling_rate")}


def expand_data_dir(args: Sequence[str]) -> list[str]:
    """``args`` with ``--data_dir DIR`` replaced by the options it stands for (see the module docstring);
    unchanged without it. A missing folder or required file is a one-line ``UserError`` naming the fix,
    except with ``--print_config``: a config is inspected before its data exists (what is missing stays
    unset)."""
    folder, rest = _take_option(list(args))
    if folder is None:
        return rest
    printing = any(w == "--print_config" or w.startswith("--print_config=") for w in rest)
    filled = _fill(Path(folder), rest, strict=not printing)
    # appended last: after every --config and class_path, and only for keys nothing else gives; --data_dir
    # itself stays, so the saved config.yaml records where the paths came from
    return [*rest, OPTION, folder, *filled]


def _fill(root: Path, rest: list[str], strict: bool = True) -> list[str]:
    """The options ``--data_dir root`` stands for, given the other arguments ``rest``; what is missing is
    a ``UserError`` (``strict``) or left out."""
    folder = str(root)

    def missing(message: str) -> None:
        if strict:
            raise UserError(f"{OPTION} {folder}: {message}")

    if not root.is_dir():
        missing(f"no such folder; prepare one: {PREP_HINT.format(dir=folder)}")
        return []
    configs = _configs(rest)
    try:
        model = _parameters(_class_path(rest, configs, "model"), "model")
        data = _parameters(_class_path(rest, configs, "data"), "data")
    except ConfigError:
        if strict:
            raise
        return []
    fill: list[tuple[str, str, str]] = []  # (section, init arg, value)

    def want(section: str, params: set[str], name: str) -> bool:
        return name in params and not _given(rest, configs, section, name)

    for split in SPLITS:
        if not want("data", data, split):
            continue
        found = [p for p in (root / "data" / f"{split}.jsonl", root / "data" / f"{split}.txt") if p.is_file()]
        if found:
            fill.append(("data", split, str(found[0])))
        elif split in REQUIRED_SPLITS:
            missing(f"no {root / 'data' / split}.jsonl (or .txt); write it with {PREP_HINT.format(dir=folder)}, "
                    f"or give --data.init_args.{split}")  # fmt: skip
    tokenizer, train = root / "tokenizer", root / "data" / "train.jsonl"
    for section, params in (("model", model), ("data", data)):
        if want(section, params, "tokenizer"):
            if tokenizer.is_dir():
                fill.append((section, "tokenizer", str(tokenizer)))
            else:
                missing(f"no tokenizer folder {tokenizer}; make it with recur tokenizer {train} --kind char "
                        f"--out {tokenizer}, or give --{section}.init_args.tokenizer")  # fmt: skip
    cmvn = root / "cmvn.json"
    if want("model", model, "cmvn"):
        if not cmvn.is_file():
            missing(f"no {cmvn}; compute it with recur stats {train} --out {cmvn}, or give --model.init_args.cmvn "
                    "(null: no normalisation)")  # fmt: skip
        else:
            fill.append(("model", "cmvn", str(cmvn)))
            # the features follow the statistics the model normalises with (not a cmvn given elsewhere)
            feats = _features(cmvn)
            for section, params, name, value in (
                ("model", model, "feat_dim", feats["bins"]),
                ("model", model, "sampling_rate", feats["rate"]),
                ("data", data, "num_mel_bins", feats["bins"]),
                ("data", data, "sampling_rate", feats["rate"]),
            ):
                if value is not None and want(section, params, name):
                    fill.append((section, name, str(value)))
    return [w for section, name, value in fill for w in (f"--{section}.init_args.{name}", value)]
