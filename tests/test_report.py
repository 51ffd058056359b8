"""`recur report`: RESULTS.md rows, change against the LSTM baseline, plots."""

from __future__ import annotations

import json

import torch

from toolkit.cli.main import main
from toolkit.report import collect_runs, results_markdown
from toolkit.report.results import relative_change


def fake_run(root, name, wer, params, with_u=False):
    d = root / name
    (d / "checkpoints").mkdir(parents=True)
    metrics = {
        "hardware": "cpu: test",
        "params": {"total": params},
        "train": {"wall_s": 125.0, "steps": 300, "items_per_s": 40.0, "item_unit": "utterances"},
        "best": {"monitor": "val/wer", "mode": "min"},
        "history": [{"step": 100, "wall_s": 40.0, "val/wer": wer * 2}, {"step": 300, "wall_s": 120.0, "val/wer": wer}],
        "final": {"test/wer": wer, "test/cer": wer / 2, "test/rtf": 0.05},
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    state = {"encoder.layers.0.0.u": torch.rand(16), "encoder.layers.1.0.u": torch.rand(16)} if with_u else {}
    torch.save({"state_dict": state}, d / "checkpoints" / "best.ckpt")


def test_table_rows_and_change_against_lstm(tmp_path):
    fake_run(tmp_path, "lstm", 0.20, 1000)
    fake_run(tmp_path, "res_indrnn", 0.15, 990, with_u=True)
    fake_run(tmp_path, "res_indrnn.stale-20260101-000000", 0.5, 990)  # moved aside by the runner
    runs = collect_runs(tmp_path)
    text = results_markdown(runs)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert set(rows) == {"model", "**lstm**", "res_indrnn"}
    assert "-25.0%" in rows["res_indrnn"] and "baseline" in rows["**lstm**"]
    assert "2.1 min" in rows["res_indrnn"] and "40.0 utterances/s" in rows["res_indrnn"]
    assert rows["model"].index("test/wer") < rows["model"].index("test/cer")
    assert relative_change(3.0, 2.0) == 50.0 and relative_change(1.0, 0.0) is None


def test_cli_writes_results_and_plots(tmp_path, capsys):
    fake_run(tmp_path, "lstm", 0.20, 1000)
    fake_run(tmp_path, "res_indrnn", 0.15, 990, with_u=True)
    assert main(["report", str(tmp_path), "--quiet"]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    for png in ("dev_vs_wall_time", "dev_vs_steps", "metric_vs_params", "throughput", "indrnn_neurons"):
        assert f"({png}.png)" in text
        assert (tmp_path / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no metrics.json" in capsys.readouterr().err
