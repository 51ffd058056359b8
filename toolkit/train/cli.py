"""``recur fit``: train any task on any datamodule from one YAML config (LightningCLI / jsonargparse).

The config names the classes (``model.class_path``, ``data.class_path``), the trainer options
and the experiment folder ``exp_dir``. ``fit`` then

1. refuses to start over an existing run unless ``--ckpt_path last`` asks to resume it (and
   refuses to "resume" when there is nothing to resume: never a silent restart from scratch);
2. saves the resolved config to ``<exp_dir>/config.yaml``;
3. trains, keeping ``checkpoints/last.ckpt`` and ``checkpoints/best.ckpt``, a CSV log per
   session in ``logs/version_<n>/`` and ``metrics.json`` (see :mod:`toolkit.train.metrics_file`);
4. evaluates the best checkpoint on the test set, if the datamodule has one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger

from toolkit.data.io import write_text
from toolkit.errors import UserError

from .checkpoints import BestAndLast
from .metrics_file import MetricsFile


class _SaveConfig(SaveConfigCallback):
    """Writes the resolved config to ``<exp_dir>/config.yaml`` atomically (a resume rewrites it)."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        text = self.parser.dump(self.config, skip_none=False)
        write_text(Path(trainer.default_root_dir) / self.config_filename, text)


class FitCLI(LightningCLI):
    """LightningCLI with the toolkit's experiment-folder conventions (``run=False``; see :func:`fit`)."""

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
        parser.add_argument("--test", type=bool, default=True, help="evaluate the best checkpoint on the test set")
        parser.add_lightning_class_args(BestAndLast, "checkpoint")
        parser.link_arguments("exp_dir", "trainer.default_root_dir")

    def instantiate_trainer(self, **kwargs) -> Trainer:
        if self._get(self.config_init, "trainer", default={}).get("logger") in (None, True):
            kwargs["logger"] = CSVLogger(self._get(self.config_init, "exp_dir"), name="logs")
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
    if args is not None:
        _check_config_files(args)
    cli = FitCLI(
        model_class=LightningModule,
        datamodule_class=LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        run=False,
        args=list(args) if args is not None else None,
        save_config_callback=_SaveConfig,
        save_config_kwargs={"overwrite": True, "save_to_log_dir": False},
        trainer_defaults={"callbacks": [MetricsFile()]},
        seed_everything_default=0,
        auto_configure_optimizers=False,
        parser_kwargs={"prog": "recur fit", "description": "Train a model from a YAML config (LightningCLI)."},
    )
    config = cli.config
    exp_dir = Path(config.exp_dir)
    ckpt = _resume_path(exp_dir, config.ckpt_path)
    os.makedirs(exp_dir, exist_ok=True)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt)
    if config.test and _has_test(cli.datamodule):
        best = cli.trainer.checkpoint_callback.best_model_path if cli.trainer.checkpoint_callback else ""
        cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=best or None)
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, MetricsFile))
    return callback.summary(cli.trainer, cli.model)


def _has_test(datamodule: LightningDataModule) -> bool:
    hook = getattr(type(datamodule), "test_dataloader", None)
    return hook is not None and hook is not LightningDataModule.test_dataloader
