"""recipes/adding/summarize.py: solved per (T, model) from metrics.json, one PNG curve per T."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "recipes" / "adding" / "summarize.py"


def load():
    spec = importlib.util.spec_from_file_location("adding_summarize", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake(root, T, model, curve, test):
    d = root / f"T{T}" / model
    d.mkdir(parents=True)
    m = {
        "params": {"total": 1000},
        "train": {"steps": curve[-1][0], "wall_s": 60.0, "items_per_s": 10.0},
        "history": [{"step": s, "wall_s": 1.0, "val/mse": v} for s, v in curve],
        "final": {"test/mse": test},
        "config": {"model": {"encoder": model}, "data": {"seq_len": T}},
    }
    (d / "metrics.json").write_text(json.dumps(m))


def test_solved_rows_and_plots(tmp_path, capsys):
    fake(tmp_path, 100, "indrnn", [(50, 0.2), (100, 0.009), (150, 0.02), (200, 0.005)], test=0.004)
    fake(tmp_path, 100, "lstm", [(50, 0.17), (100, 0.16)], test=0.16)
    fake(tmp_path, 500, "indrnn", [(50, 0.3)], test=0.02)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.json").write_text(json.dumps({"config": {"data": {}}}))  # not adding: skipped
    summarize = load()
    assert summarize.main([str(tmp_path)]) == 0
    rows = [line for line in (tmp_path / "SUMMARY.md").read_text().splitlines() if line.startswith("| 100") or
            line.startswith("| 500")]
    assert len(rows) == 3
    indrnn100 = next(r for r in rows if "| 100 | indrnn" in r)
    assert "| yes | 100 |" in indrnn100  # solved; first dev MSE below 0.01 at step 100
    assert "| no | - |" in next(r for r in rows if "| lstm" in r)
    assert "| no | - |" in next(r for r in rows if r.startswith("| 500"))  # test 0.02 is not solved
    for T in (100, 500):
        assert (tmp_path / f"mse_T{T}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_runs_is_an_error(tmp_path, capsys):
    assert load().main([str(tmp_path)]) == 2
    assert "no adding-problem metrics.json" in capsys.readouterr().err
