"""PNG plots of an experiment folder: dev curves, metric against size, throughput, IndRNN neurons, and the
adding problem's dev MSE per T."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from toolkit.data.io import atomic_open  # noqa: E402

from .neurons import recurrent_weights  # noqa: E402
from .runs import Run, figure_keys  # noqa: E402
from .seq import ADDING_BASELINE, ADDING_SOLVED, benchmark  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def curves(runs: list[Run], out: Path, x: str) -> Path | None:
    monitor = next((r.monitor for r in runs if r.monitor), None)
    if monitor is None:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for r in runs:
        points = [(h[x], h[monitor]) for h in r.metrics.get("history", []) if monitor in h and x in h]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=r.name)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("training wall time (s)" if x == "wall_s" else "training steps")
    ax.set_ylabel(monitor)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{monitor} against {'wall time' if x == 'wall_s' else 'steps'}")
    return _save(fig, out)


def metric_vs_params(runs: list[Run], out: Path) -> Path | None:
    keys = figure_keys(runs)
    pts = [
        (r.params, r.final.get(keys[0]), r.name) for r in runs if keys and r.params and r.final.get(keys[0]) is not None
    ]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for p, v, name in pts:
        ax.scatter(p, v)
        ax.annotate(name, (p, v), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("parameters")
    ax.set_ylabel(keys[0])
    ax.grid(alpha=0.3)
    ax.set_title(f"{keys[0]} against model size")
    return _save(fig, out)


def throughput(runs: list[Run], out: Path) -> Path | None:
    pts = [(r.name, r.train.get("items_per_s"), r.train.get("item_unit", "items")) for r in runs]
    pts = [p for p in pts if p[1]]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([p[0] for p in pts], [p[1] for p in pts], color="tab:blue")
    ax.set_ylabel(f"{pts[0][2]} / s (training)")
    ax.set_title("training throughput")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out)


def indrnn_neurons(runs: list[Run], out: Path) -> Path | None:
    """Per-neuron view of IndRNN models: each neuron's recurrent weight u and its memory horizon
    (steps until its own past contribution decays to 1%: ln 0.01 / ln |u|), per layer."""
    found = [(r.name, recurrent_weights(r.path)) for r in runs]
    found = [(name, layers) for name, layers in found if layers]
    if not found:
        return None
    fig, axes = plt.subplots(len(found), 2, figsize=(10, 3.2 * len(found)), squeeze=False)
    for (name, layers), (ax_u, ax_h) in zip(found, axes, strict=True):
        cmap = plt.get_cmap("viridis", max(2, len(layers)))
        for i, (layer, u) in enumerate(layers.items()):
            a = sorted(abs(v) for v in u)
            horizon = [min(1e5, math.log(0.01) / math.log(v)) if 0 < v < 1 else (1e5 if v >= 1 else 1.0) for v in a]
            ax_u.plot(range(len(a)), a, color=cmap(i), label=layer if len(layers) <= 8 else None)
            ax_h.plot(a, horizon, ".", ms=3, color=cmap(i))
        ax_u.set_title(f"{name}: |u| per neuron (sorted), by layer")
        ax_u.set_xlabel("neuron (sorted by |u|)")
        ax_u.set_ylabel("|u|")
        if len(layers) <= 8:
            ax_u.legend(fontsize=6)
        ax_h.set_yscale("log")
        ax_h.set_title(f"{name}: memory horizon against |u|")
        ax_h.set_xlabel("|u|")
        ax_h.set_ylabel("steps to decay to 1%")
        for ax in (ax_u, ax_h):
            ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out)


def adding_curves(runs: list[Run], T: int, out: Path) -> Path | None:
    """Dev MSE against step (log scale) of every model at one length T, with the 1/6 baseline and the 0.01
    line that counts as solved."""
    drawn = [(r.encoder, r.history) for r in sorted(runs, key=lambda r: r.encoder)]
    drawn = [(name, [(h["step"], h["val/mse"]) for h in hist if h.get("val/mse") is not None]) for name, hist in drawn]
    drawn = [(name, points) for name, points in drawn if points]
    if not drawn:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in drawn:
        ax.plot(*zip(*points, strict=True), label=name)
    ax.axhline(ADDING_BASELINE, color="grey", ls="--", lw=0.8, label="baseline 1/6")
    ax.axhline(ADDING_SOLVED, color="grey", ls=":", lw=0.8, label=f"solved {ADDING_SOLVED}")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("dev MSE")
    ax.set_title(f"Adding problem, T = {T}")
    ax.legend(fontsize=8)
    return _save(fig, out)


def write_plots(runs: list[Run], exp_dir: Path) -> list[Path]:
    """Every plot that ``runs`` have data for, into ``exp_dir``: adding-problem runs get one dev-MSE plot per T
    (``mse_T<T>.png``), the other runs the dev curves, figure against size, throughput and IndRNN neurons."""
    adding: dict[int, list[Run]] = {}
    for r in runs:
        kind = benchmark(r)
        if kind is not None and kind[0] == "adding":
            adding.setdefault(kind[1], []).append(r)
    plotted = {id(r) for group in adding.values() for r in group}
    runs = [r for r in runs if id(r) not in plotted]
    made = [adding_curves(group, T, exp_dir / f"mse_T{T}.png") for T, group in sorted(adding.items())]
    made += [
        curves(runs, exp_dir / "dev_vs_wall_time.png", "wall_s"),
        curves(runs, exp_dir / "dev_vs_steps.png", "step"),
        metric_vs_params(runs, exp_dir / "metric_vs_params.png"),
        throughput(runs, exp_dir / "throughput.png"),
        indrnn_neurons(runs, exp_dir / "indrnn_neurons.png"),
    ]
    return [p for p in made if p is not None]
