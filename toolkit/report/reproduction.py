"""The reproduction table: for every run under an experiment root, the paper's figure beside ours.

Each ``metrics.json`` below the root (written by ``recur fit``) becomes one row: the experiment it
belongs to (recognised from its saved config: adding problem at T, sequential / permuted MNIST, PTB
char / word, or the corpus folder otherwise), the model, the paper's figure for that experiment and
model (``PAPER``, with its source; "no paper figure" when the papers give none), our figure, the
config the run saved, a command that reruns it, the hardware, the training wall time and steps.

Like ``RESULTS.md``, it reads ``metrics.json`` only (plus whether ``config.yaml`` exists beside it).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .runs import Run, cell, duration, figure_keys, find_runs, fmt, fmt_figure
from .seq import ADDING_SOLVED, benchmark

__all__ = ["build_rows", "find_runs", "reproduction_markdown", "write_reproduction"]

NO_FIGURE = "no paper figure"

_LI_2018 = "Li et al. 2018"  # Independently Recurrent Neural Network (IndRNN), CVPR
_LI_2019 = "Li et al. 2019"  # Deep Independently Recurrent Neural Network, arXiv:1910.06251


@dataclass(frozen=True)
class PaperFigure:
    """One published figure: what it says (``text``) and where it is from (``source``)."""

    text: str
    source: str

    def __str__(self) -> str:
        return f"{self.text} ({self.source})"


def _adding(ok_up_to: int) -> dict[int, PaperFigure]:
    return {
        t: PaperFigure("converges" if t <= ok_up_to else "fails (stays at the 1/6 baseline)", f"{_LI_2018}, fig. 2")
        for t in (100, 500, 1000, 5000)
    }


# experiment -> encoder -> figure (adding: encoder -> T -> figure)
PAPER: dict[str, dict[str, Any]] = {
    "adding": {"indrnn": _adding(5000), "irnn": _adding(500), "lstm": _adding(500)},
    "smnist": {
        "indrnn": PaperFigure("1.0% test error", _LI_2018),
        "res_indrnn": PaperFigure("0.61% test error", _LI_2019),
        "irnn": PaperFigure("3% test error", f"Le et al. 2015, quoted by {_LI_2018}"),
        "lstm": PaperFigure("1.8% test error", f"as quoted by {_LI_2018}"),
    },
    "pmnist": {
        "indrnn": PaperFigure("4.0% test error", _LI_2018),
        "res_indrnn": PaperFigure("2.98% test error", _LI_2019),
        "irnn": PaperFigure("18% test error", f"Le et al. 2015, quoted by {_LI_2018}"),
        "lstm": PaperFigure("12% test error", f"as quoted by {_LI_2018}"),
    },
    "ptb_char": {"res_indrnn": PaperFigure("1.19 BPC", _LI_2019)},
    "ptb_word": {
        "res_indrnn": PaperFigure("58.99 test ppl", _LI_2019),
        "lstm": PaperFigure("57.3 test ppl, AWD-LSTM (a regularised 3-layer LSTM)", "Merity et al. 2018"),
    },
}

_EXPERIMENT_ORDER = ("adding", "smnist", "pmnist", "ptb_char", "ptb_word")
_EXPERIMENT_NAMES = {
    "smnist": "sequential MNIST",
    "pmnist": "permuted MNIST",
    "ptb_char": "PTB char",
    "ptb_word": "PTB word",
}
_MODEL_ORDER = ("indrnn", "res_indrnn", "dense_indrnn", "irnn", "lstm")


@dataclass
class Row:
    """One run of the table (every field already formatted for markdown, except the sort key)."""

    sort_key: tuple
    experiment: str
    run: str
    model: str
    params: str
    paper: str
    ours: str
    config: str
    command: str
    hardware: str
    wall: str
    steps: str

    def cells(self) -> list[str]:
        return [
            self.experiment, self.run, self.model, self.params, self.paper, self.ours, self.config, self.command,
            self.hardware, self.wall, self.steps,
        ]  # fmt: skip


HEADER = [
    "experiment", "run", "model", "params", "paper", "ours", "config", "command", "hardware", "train wall time",
    "steps",
]  # fmt: skip


def classify(run: Run, root: Path) -> tuple[str, int | None]:
    """(experiment key, T for the adding problem) from the run's saved config.

    Keys: ``adding``, ``smnist``, ``pmnist``, ``ptb_char``, ``ptb_word``; any other run is named after
    the folder above it relative to ``root`` (``fsdd``, ``ljspeech/lm``...), or the root's name.
    """
    kind = benchmark(run)
    if kind is not None:
        return kind
    data, model = run.config.get("data") or {}, run.config.get("model") or {}
    task = str(run.metrics.get("task", ""))
    if task.endswith("LMTask") and "ptb" in " ".join(str(data.get(k, "")) for k in ("train", "test")).lower():
        per_char = model.get("report_bpc") or any(k.endswith("/bpc") for k in run.final)
        return ("ptb_char" if per_char else "ptb_word"), None
    rel = run.path.parent.relative_to(root) if run.path != root else Path(".")
    return (str(rel) if str(rel) != "." else root.resolve().name), None


def encoder_of(run: Run) -> str:
    """The encoder's layer name (``config.model.encoder``), else the run folder's name."""
    return run.encoder


def paper_figure(experiment: str, encoder: str, steps: int | None = None) -> PaperFigure | None:
    """The paper's figure for this experiment and encoder (adding: at ``steps`` = T), or None."""
    figure = PAPER.get(experiment, {}).get(encoder)
    if isinstance(figure, dict):
        figure = figure.get(steps)
    return figure


def our_figure(run: Run, experiment: str) -> str:
    """Our headline figure, phrased like the paper's (adding: test MSE and solved or not)."""
    final = run.final
    if experiment == "adding":
        mse = final.get("test/mse")
        if mse is None:
            return "no test figure (training unfinished?)"
        return f"test MSE {mse:.4f} ({'solved' if mse < ADDING_SOLVED else 'not solved'})"
    if experiment in ("smnist", "pmnist"):
        err = final.get("test/err")
        if err is None:
            return "no test figure (training unfinished?)"
        limit = ((run.metrics.get("config") or {}).get("data") or {}).get("test_limit") or 0
        return f"{err:.2f}% test error" + (f" (first {limit:,} test images)" if limit else "")
    lm_keys = {
        "ptb_char": (("test_full/bpc", "test/bpc"), "BPC"),
        "ptb_word": (("test_full/ppl", "test/ppl"), "test ppl"),
    }
    if experiment in lm_keys:
        keys, unit = lm_keys[experiment]
        value = next((final[k] for k in keys if final.get(k) is not None), None)
        return f"{value:.2f} {unit}" if value is not None else "no test figure (training unfinished?)"
    keys = figure_keys([run])
    if keys:
        return f"{fmt_figure(keys[0], final[keys[0]])} {keys[0]}"
    best = run.metrics.get("best") or {}
    monitor = best.get("monitor")
    if monitor and best.get("value") is not None:  # no test figure: the best dev figure
        return f"{fmt_figure(monitor, best['value'])} {monitor} (best dev; no test figure)"
    last = next((h for h in reversed(run.metrics.get("history") or []) if monitor and h.get(monitor) is not None), None)
    if last is not None:
        return f"{fmt_figure(monitor, last[monitor])} {monitor} (last dev, step {last['step']:,}; no test figure)"
    return "no final figure"


def rerun_command(run: Run, config: Path | None) -> str:
    """``recur fit`` on the resolved ``config`` the run saved (None: it saved none), into a fresh
    folder (``fit`` refuses to start over an existing run), plus the ``recur lm eval`` that wrote
    ``test_full`` figures."""
    if config is None:
        return "- (no config.yaml beside metrics.json)"
    rerun = Path(f"{run.path}.rerun")
    parts = [f"recur fit --config {shlex.quote(str(config))} --exp_dir {shlex.quote(str(rerun))}"]
    data = ((run.metrics.get("config") or {}).get("data")) or {}
    if any(k.startswith("test_full/") for k in run.final) and data.get("test"):
        parts.append(
            f"recur lm eval --model {shlex.quote(str(rerun))} --text {shlex.quote(str(data['test']))} --set test_full"
        )
    return "; ".join(f"`{p}`" for p in parts)


def build_rows(root: str | Path, runs: list[Run] | None = None) -> list[Row]:
    """One ``Row`` per run below ``root``, sorted by experiment then model.

    Paths in the rows start with ``root`` as given (the runs are found below it), so that the
    commands work from wherever ``root`` was named.
    """
    root = Path(root)
    runs = find_runs(root) if runs is None else runs
    rows = []
    for run in runs:
        experiment, steps = classify(run, root)
        encoder = encoder_of(run)
        figure = paper_figure(experiment, encoder, steps)
        config = run.path / "config.yaml" if (run.path / "config.yaml").is_file() else None
        train = run.train
        steps_done = fmt(train.get("steps"))
        if train and train.get("finished") is False:
            steps_done += " (unfinished)"
        name = f"adding, T={steps}" if experiment == "adding" else _EXPERIMENT_NAMES.get(experiment, experiment)
        order = _EXPERIMENT_ORDER.index(experiment) if experiment in _EXPERIMENT_ORDER else len(_EXPERIMENT_ORDER)
        model_order = _MODEL_ORDER.index(encoder) if encoder in _MODEL_ORDER else len(_MODEL_ORDER)
        rows.append(
            Row(
                sort_key=(order, experiment if order == len(_EXPERIMENT_ORDER) else "", steps or 0, model_order,
                          encoder, str(run.path)),
                experiment=name,
                run=f"`{run.path}`",
                model=encoder,
                params=fmt(run.params),
                paper=str(figure) if figure else NO_FIGURE,
                ours=our_figure(run, experiment),
                config=f"`{config}`" if config else "-",
                command=rerun_command(run, config),
                hardware=str(run.metrics.get("hardware") or "-"),
                wall=duration(train.get("wall_s")),
                steps=steps_done,
            )
        )  # fmt: skip
    return sorted(rows, key=lambda r: r.sort_key)


def reproduction_markdown(rows: list[Row], title: str = "Reproduction table", root: str | Path = "exp") -> str:
    """The markdown page: the table, then what the columns mean and where the paper figures come from."""
    lines = [f"# {title}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell(c) for c in r.cells()) + " |" for r in rows]
    lines += [
        "",
        f"Ours: read from each run's `metrics.json` (adding: solved = test MSE < {ADDING_SOLVED}; MNIST: test error "
        "in %; PTB: whole-test-file figure from `recur lm eval --set test_full` where it was run, else the fit's "
        "test figure; other corpora: the first comparable final figure). Paper: the figure the papers give for that "
        "experiment and model (table in `toolkit/report/reproduction.py`); "
        f"'{NO_FIGURE}' where they give none. Command: reruns the run from the resolved config it saved into a "
        "new folder (`recur fit` will not start over an existing run; `--ckpt_path last` in the old folder "
        "resumes it instead). The config records the last session's trainer settings (`max_time`, `max_steps`).",
        f"Regenerate with `recur report {root} --reproduction`.",
    ]
    return "\n".join(lines) + "\n"


def write_reproduction(root: str | Path, out: str | Path | None = None, title: str | None = None) -> Path:
    """Write the reproduction table for every run below ``root`` to ``out`` (default
    ``<root>/REPRODUCTION.md``), atomically; returns the path written."""
    from toolkit.data.io import write_text

    root = Path(root)
    rows = build_rows(root)
    text = reproduction_markdown(rows, title or f"Reproduction table: {root}", root)
    return write_text(Path(out) if out else root / "REPRODUCTION.md", text)
