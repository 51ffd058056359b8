"""Adding-problem summary: per T and model, solved or not (test MSE < 0.01), after how many steps,
and one dev-MSE curve per T with every model on it.

    python recipes/adding/summarize.py exp/adding     # -> exp/adding/SUMMARY.md, exp/adding/mse_T<T>.png

Reads only the runs' metrics.json (any folder layout below the root).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toolkit.data.io import atomic_open, write_text

SOLVED = 0.01
BASELINE = 1.0 / 6.0


def load_runs(root: Path) -> list[dict]:
    runs = []
    for path in sorted(root.rglob("metrics.json")):
        m = json.loads(path.read_text())
        cfg = m.get("config", {})
        if "seq_len" not in cfg.get("data", {}):
            continue  # not an adding-problem run
        m["_T"], m["_model"], m["_dir"] = cfg["data"]["seq_len"], cfg["model"]["encoder"], path.parent
        runs.append(m)
    return runs


def first_solved_step(history: list[dict]) -> int | None:
    return next((h["step"] for h in history if h.get("val/mse", 1.0) < SOLVED), None)


def row(m: dict) -> str:
    test = m["final"].get("test/mse")
    solved = test is not None and test < SOLVED
    at = first_solved_step(m["history"])
    train = m["train"]
    return (
        f"| {m['_T']} | {m['_model']} | {m['params']['total']:,} | {train['steps']:,} | {train['wall_s'] / 60:.1f} min "
        f"| {train['items_per_s'] or 0:.0f} | {m['history'][-1]['val/mse'] if m['history'] else float('nan'):.4f} "
        f"| {test if test is not None else float('nan'):.4f} | {'yes' if solved else 'no'} | {at if at else '-'} |"
    )


def table(runs: list[dict]) -> str:
    head = (
        "| T | model | params | steps | train wall | seq/s | last dev MSE | test MSE | solved (< 0.01) | "
        "first dev MSE < 0.01 at step |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    order = {"indrnn": 0, "irnn": 1, "lstm": 2}
    runs = sorted(runs, key=lambda m: (m["_T"], order.get(m["_model"], 9), m["_model"]))
    return "\n".join([head] + [row(m) for m in runs])


def plot(runs: list[dict], T: int, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in sorted(runs, key=lambda m: m["_model"]):
        steps = [h["step"] for h in m["history"]]
        ax.plot(steps, [h["val/mse"] for h in m["history"]], label=m["_model"])
    ax.axhline(BASELINE, color="grey", ls="--", lw=0.8, label="baseline 1/6")
    ax.axhline(SOLVED, color="grey", ls=":", lw=0.8, label="solved 0.01")
    ax.set_yscale("log")
    ax.set_xlabel("training step (batch 50)")
    ax.set_ylabel("dev MSE")
    ax.set_title(f"Adding problem, T = {T}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"mse_T{T}.png"
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder holding the adding-problem runs (e.g. exp/adding)")
    args = parser.parse_args(argv)
    runs = load_runs(args.root)
    if not runs:
        print(f"summarize: error: no adding-problem metrics.json under {args.root}", file=sys.stderr)
        return 2
    plots = [plot([m for m in runs if m["_T"] == T], T, args.root) for T in sorted({m["_T"] for m in runs})]
    text = "# Adding problem\n\n" + table(runs) + "\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots) + "\n"
    write_text(args.root / "SUMMARY.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
