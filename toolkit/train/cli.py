"""``recur fit``: train any task on any datamodule from one YAML config (LightningCLI / jsonargparse).

``--data_dir DIR`` stands for the paths of a prepared data folder (:mod:`toolkit.train.data_dir`).

The config names the classes (``model.class_path``, ``data.class_path``), the trainer options
and the experiment folder ``exp_dir``. ``fit`` then

1. refuses to start over an existing run unless ``--ckpt_path last`` asks to resume it (and
   refuses to "resume" when there is nothing to resume: never a silent restart from scratch);
2. saves the resolved config to ``<exp_dir>/config.yaml``;
3. trains, keeping ``checkpoints/last.ckpt`` and ``checkpoints/best.ckpt``, a CSV log per
   session in ``logs/version_<n>/`` and ``metrics.json`` (see :mod:`toolkit.train.metrics_file`),
   printing one line per validation (a progress bar only on a terminal: :mod:`toolkit.train.progress`);
4. evaluates the best checkpoint on the test set, if the datamodule has one.

Ctrl-C while training stops at the end of the running step with ``last.ckpt`` saved and raises
:class:`~toolkit.train.interrupt.TrainingInterrupted` (a ``KeyboardInterrupt``) whose message says how to
resume (:mod:`toolkit.train.interrupt`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import signal
import threading
import warnings
from argparse import ArgumentError
from collections.abc import Sequence
from pathlib import Path

import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger

from toolkit.data.io import write_text
from toolkit.errors import ConfigError, UserError

from .checkpoints import BestAndLast
from .data_dir import expand_data_dir
from .interrupt import StopOnInterrupt, TrainingInterrupted, TrainingStopped
from .metrics_file import MetricsFile
from .progress import ValidationLines, interactive


class _SaveConfig(SaveConfigCallback):
    """Writes the resolved config to ``<exp_dir>/config.yaml`` atomically (a resume rewrites it)."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        text = self.parser.dump(self.config, skip_none=False)
        write_text(Path(trainer.default_root_dir) / self.config_filename, text)


class FitCLI(LightningCLI):
    """LightningCLI with the toolkit's experiment-folder conventions (``run=False``; see :func:`fit`)."""

    last_parser = None  # the parser of the latest FitCLI, for naming valid keys in a refusal

    def init_parser(self, **kwargs) -> LightningArgumentParser:
        parser = super().init_parser(**kwargs)
        FitCLI.last_parser = parser
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--exp_dir",
            type=str,
            required=True,
            help="experiment folder, conventionally exp/<corpus>/<model>; config, checkpoints, logs and "
            "metrics.json go there",
        )
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="'last' resumes <exp_dir>/checkpoints/last.ckpt exactly (step, optimiser, data position); "
            "or a checkpoint path",
        )
        parser.add_argument(
            "--data_dir",
            type=str | None,
            default=None,
            help="a prepared data folder (data/train.jsonl, dev.jsonl, test.jsonl, tokenizer/, cmvn.json): fills "
            "the manifests, tokenizer, CMVN and feature settings that the config and command line leave unset",
        )
        parser.add_argument("--test", type=bool, default=True, help="evaluate the best checkpoint on the test set")
        parser.add_lightning_class_args(BestAndLast, "checkpoint")
        parser.link_arguments("exp_dir", "trainer.default_root_dir")

    def before_instantiate_classes(self) -> None:
        # jsonargparse (4.48) turns a null given to one key of a dict option of a class_path/init_args
        # section (--model.init_args.encoder_opts.input_std null) into the string 'None'; no option of
        # ours takes that string, so it is read back as the null the user wrote
        for section in ("model", "data"):
            init_args = getattr(self._get(self.config, section), "init_args", None)
            if init_args is None:
                continue
            for value in vars(init_args).values():
                if isinstance(value, dict):
                    value.update({k: None for k, v in value.items() if v == "None"})

    def instantiate_trainer(self, **kwargs) -> Trainer:
        trainer = self._get(self.config_init, "trainer", default={})
        _check_trainer(trainer)
        if trainer.get("logger") in (None, True):
            kwargs["logger"] = CSVLogger(self._get(self.config_init, "exp_dir"), name="logs")
        # a progress bar written into a log is one redraw after another: outside a terminal there is
        # none, whatever enable_progress_bar says (ValidationLines prints a line per validation instead);
        # a progress-bar callback named in the config is kept as given
        callbacks = trainer.get("callbacks") or []
        if not interactive() and not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["enable_progress_bar"] = False
        return super().instantiate_trainer(**kwargs)


def _resume_path(exp_dir: Path, ckpt_path: str | None) -> str | None:
    """The checkpoint to resume from, checked; ``UserError`` rather than a silent fresh start."""
    last = exp_dir / "checkpoints" / "last.ckpt"
    if ckpt_path == "last":
        if not last.is_file():
            raise UserError(
                f"--ckpt_path last: no checkpoint at {last}; start the run without --ckpt_path "
                "(or check exp_dir in the config)"
            )
        return str(last)
    if ckpt_path is not None:
        if not Path(ckpt_path).is_file():
            raise UserError(f"--ckpt_path {ckpt_path}: no such checkpoint file")
        return ckpt_path
    if last.exists():
        raise UserError(
            f"{exp_dir} already holds a run ({last}); resume it with --ckpt_path last, "
            "or set another exp_dir, or delete the folder to start again"
        )
    return None


MAX_TIME = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")


def _check_trainer(trainer: dict) -> None:
    """Trainer values Lightning would only refuse with a traceback, checked before anything is built."""
    max_time = trainer.get("max_time")
    if isinstance(max_time, str) and not MAX_TIME.match(max_time):
        raise ConfigError(f"trainer.max_time {max_time!r}: give DD:HH:MM:SS, e.g. 00:00:15:00 for 15 minutes")
    for key in ("max_steps", "max_epochs"):
        value = trainer.get(key)
        if isinstance(value, int) and value < -1:
            raise ConfigError(f"trainer.{key} {value}: give -1 (no limit) or a positive number")


def _closest(word: str, choices: Sequence[str]) -> str:
    """' (did you mean X?)' for the nearest valid name, or ''."""
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def _class_options(class_path: str) -> list[str]:
    """The constructor arguments of the class a config names (its valid init_args keys)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return []
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]


REQUIRED = ("exp_dir", "model", "data")


def _given_keys(args: Sequence[str]) -> set[str]:
    """The top-level keys the --config files and the command line give."""
    import yaml

    given: set[str] = set()
    for i, word in enumerate(args):
        if word in ("--config", "-c") and i + 1 < len(args) or word.startswith("--config="):
            path = args[i + 1] if "=" not in word else word.split("=", 1)[1]
            try:
                loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue
            given |= {k for k, v in (loaded or {}).items() if v is not None} if isinstance(loaded, dict) else set()
        elif word.startswith("--") and word not in ("--config", "-c"):
            given.add(word[2:].split("=", 1)[0].split(".", 1)[0])
    return given


def parse_refusal(message: str, parser, args: Sequence[str] = ()) -> str:
    """One line for jsonargparse's refusal of the command line or config (a misspelt key, a missing value,
    a value of the wrong type) instead of its usage text and union listing. A missing value is reported
    with every other required top-level key that ``args`` leave out."""
    unknown = re.search(r"class_path '([\w.]+)':\s*Option '(\w+)' is not accepted", message)
    if unknown:
        cls, key = unknown.groups()
        return f"{cls} has no option {key!r}{_closest(key, _class_options(cls))} (in the config's init_args)"
    missing = re.findall(r'Key "([\w.]+)" is required', message)
    missing += re.findall(r'Parser key "([\w.]+)":\s*Expected a [^\n]*Got value: None', message)
    if missing:
        missing += [k for k in REQUIRED if k not in _given_keys(args)]
        names = ", ".join(sorted(set(missing)))
        return f"missing required value(s): {names} (set them in the config or as --KEY VALUE)"
    keys = [a.dest for a in parser._actions if getattr(a, "dest", None)]
    for bad in re.findall(r"(?i:unrecognized arguments|not expected)[^\n]*?([\w.]+\.[\w.]+|--[\w.]+)", message):
        bad = bad.lstrip("-")
        return f"unknown option {bad!r}{_closest(bad, keys)}; `recur fit --help` lists them"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    details = [line.removeprefix("- ") for line in lines[1:] if line.startswith("- ") and "NoneType" not in line]
    detail = details[0] if details else ""
    return " ".join(lines[0].split()) + (f": {detail}" if detail else "")


def _check_config_files(args: Sequence[str]) -> None:
    """A missing ``--config`` file is one clear line, not jsonargparse's full usage text."""
    for i, word in enumerate(args):
        if word in ("--config", "-c") and i + 1 < len(args):
            path = args[i + 1]
        elif word.startswith("--config="):
            path = word.split("=", 1)[1]
        else:
            continue
        if not Path(path).is_file():
            raise UserError(f"--config {path}: no such file (give a YAML config, e.g. recipes/adding/base.yaml)")


def fit(args: Sequence[str] | None = None) -> dict | None:
    """Parse ``args`` (``--config CFG.yaml``, overrides like ``--trainer.max_steps=100``), train and test.

    Returns the contents of ``metrics.json`` (``--print_config`` prints and exits).
    """
    # LightningCLI warns when args are given while sys.argv holds others; `recur fit` hands it exactly
    # the words after "fit", so the warning would only be noise.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    # fit refuses to start over an existing run (_resume_path), so a non-empty checkpoint folder is always
    # a resumed run's, never a clash
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    if args is not None:
        _check_config_files(args)
        args = expand_data_dir(args)
    try:
        cli = _build_cli(args)
    except ArgumentError as err:
        raise ConfigError(parse_refusal(str(err), FitCLI.last_parser, list(args or []))) from None
    config = cli.config
    exp_dir = Path(config.exp_dir)
    ckpt = _resume_path(exp_dir, config.ckpt_path)
    _check_optimizer(cli.model)
    os.makedirs(exp_dir, exist_ok=True)
    # gradients walked back over long sequences underflow into denormal floats, which the CPU computes
    # on slowly (a 5x slower adding-problem step at T = 1000: docs/benchmarks.md); zero them while training,
    # and give the process back its default afterwards (fit is also called from Python)
    torch.set_flush_denormal(True)
    sigint = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt)
        if config.test and _has_test(cli.datamodule):
            best = cli.trainer.checkpoint_callback.best_model_path if cli.trainer.checkpoint_callback else ""
            # verbose=False: the figures are one line (ValidationLines), not Lightning's table
            cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best or None, verbose=False)
    except TrainingStopped as stop:
        if not cli.trainer.is_global_zero:  # the other processes of a DDP run: rank 0 says it for all
            raise SystemExit(130) from None
        raise TrainingInterrupted(_resume_hint(exp_dir, stop.path, stop.step)) from None
    except SystemExit as err:
        # Lightning's answer to a KeyboardInterrupt (a second Ctrl-C, or one before training started)
        if not isinstance(err.__context__, KeyboardInterrupt):
            raise
        raise TrainingInterrupted(_resume_hint(exp_dir, _last_on_disk(exp_dir))) from None
    except Exception as err:
        # Ctrl-C reaches the data loader's worker processes too, which then die: the loader's error is
        # the interruption's doing, not a bug
        if not any(isinstance(c, StopOnInterrupt) and c.requested for c in cli.trainer.callbacks):
            raise
        raise TrainingInterrupted(_resume_hint(exp_dir, _last_on_disk(exp_dir))) from err
    finally:
        torch.set_flush_denormal(False)
        if sigint is not None:  # Lightning leaves Ctrl-C ignored after handling one
            signal.signal(signal.SIGINT, sigint)
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, MetricsFile))
    return callback.summary(cli.trainer, cli.model)


def _last_on_disk(exp_dir: Path) -> str | None:
    last = exp_dir / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None


def _resume_hint(exp_dir: Path, last: str | None, step: int | None = None) -> str:
    """Where an interrupted run stands and the command that resumes it."""
    if last is None:  # interrupted before the first checkpoint (config.yaml may not be written yet)
        return "nothing was saved to resume from: the same command starts the run again"
    at = f" at step {step}" if step is not None else ""
    return f"saved {last}{at}; resume with: recur fit --config {exp_dir / 'config.yaml'} --ckpt_path last"


def _check_optimizer(model: LightningModule) -> None:
    """The optimiser settings (name, lr, schedule) refused before any feature is computed or folder made:
    ``configure_optimizers`` builds a throwaway optimiser. Only the toolkit's own refusals count here; a
    schedule that needs the running trainer is left to the real call."""
    try:
        model.configure_optimizers()
    except UserError:
        raise
    except (RuntimeError, AttributeError, TypeError):  # e.g. BudgetDecay reads the trainer, not attached yet
        pass


def _build_cli(args: Sequence[str] | None) -> FitCLI:
    return FitCLI(
        model_class=LightningModule,
        datamodule_class=LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        run=False,
        args=list(args) if args is not None else None,
        save_config_callback=_SaveConfig,
        save_config_kwargs={"overwrite": True, "save_to_log_dir": False},
        trainer_defaults={"callbacks": [MetricsFile(), ValidationLines(), StopOnInterrupt()]},
        seed_everything_default=0,
        auto_configure_optimizers=False,
        parser_kwargs={
            "prog": "recur fit",
            "description": "Train a model from a YAML config (LightningCLI).",
            "exit_on_error": False,  # refusals become one line (parse_refusal), not a usage dump
        },
    )


def _has_test(datamodule: LightningDataModule) -> bool:
    hook = getattr(type(datamodule), "test_dataloader", None)
    return hook is not None and hook is not LightningDataModule.test_dataloader
