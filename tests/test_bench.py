"""``recur bench`` end to end on a tiny size: files written and well-formed (no timing assertions)."""

from __future__ import annotations

import json

import pytest
import torch

from toolkit.bench import markdown_table
from toolkit.bench.cases import MODELS
from toolkit.cli.main import main


def test_quick_cpu_run_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "bench_out"
    assert main(["bench", "--quick", "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
    data = json.loads((out / "bench_cpu.json").read_text())
    assert data["meta"]["device"] == "cpu" and data["meta"]["recurrence_impl"] == "cpu"
    assert data["skipped"] == 0 and data["copy_bandwidth_Bps"] > 0
    rows = {r["model"]: r for r in data["rows"] if r.get("case") != "ctc_step"}
    assert set(rows) == set(MODELS)
    assert {r["model"] for r in data["rows"]} - set(rows) == {"ctc_step/res_indrnn", "ctc_step/lstm"}
    for r in rows.values():
        assert (r["steps"], r["batch"], r["hidden"]) == (16, 2, 8)
        assert len(r["times_s"]) == 2 and r["median_s"] > 0 and r["min_s"] <= r["median_s"]
        assert r["speedup_vs_lstm"] == pytest.approx(rows["lstm"]["median_s"] / r["median_s"])
        assert r["peak_memory_bytes"] is None  # only measured on CUDA
    assert rows["recurrence"]["fwd_bwd_Bps"] > 0 and rows["recurrence"]["forward_Bps"] > 0
    md = (out / "bench_cpu.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| model | T | B | H | median ms")
    assert len(table) == 2 + len(MODELS) + 2  # header, rule, one row per model, two CTC step rows
    assert all(line.count("|") == table[0].count("|") for line in table)
    assert "## Targets" in md and "faster than LSTM" in md
    assert not list(out.glob("*.tmp"))  # atomic writes leave no temp files
    assert "wrote" in capsys.readouterr().out


def test_failed_case_is_reported_not_fatal():
    result = {
        "meta": {
            "device": "cuda", "device_name": "X", "dtype": "float32", "recurrence_impl": "triton", "torch": "2",
            "triton": "3", "cpu_threads": 1, "warmup": 1, "repeats": 2, "started_utc": "now",
            "load_average_start": [0.0, 0.0, 0.0],
        },
        "copy_bandwidth_Bps": 1e12,
        "rows": [
            {"model": "lstm", "steps": 4, "batch": 2, "hidden": 8, "error": "CUDA out of memory"},
            {"model": "recurrence", "steps": 4, "batch": 2, "hidden": 8, "median_s": 1e-3, "fwd_bwd_Bps": 8e11,
             "peak_memory_bytes": 3 * 2**20},
        ],
        "skipped": 1,
    }  # fmt: skip
    md = markdown_table(result)
    assert "failed: CUDA out of memory" in md and "1 case(s) failed" in md
    assert "80% of copy" in md and "(target >= 70%: met)" in md
    assert "| 3 |" in md  # peak MiB


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_device_is_a_one_line_error(tmp_path, capsys):
    assert main(["bench", "--quick", "--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no CUDA device" in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_ctc_step_rows_equal_size_and_ratio(tmp_path):
    """`--case ctc_step` on the tiny size: both rows, equal parameter counts, the ratio from the two medians."""
    out = tmp_path / "bench_out"
    args = ["bench", "--quick", "--case", "ctc_step", "--device", "cpu", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    data = json.loads((out / "bench_cpu_ctc_step.json").read_text())
    assert data["skipped"] == 0 and data["meta"]["case"] == "ctc_step"
    assert not (out / "bench_cpu.json").exists()  # a one-case run leaves a full run's files alone
    rows = {r["model"]: r for r in data["rows"]}
    assert set(rows) == {"ctc_step/res_indrnn", "ctc_step/lstm"}
    ind, lstm = rows["ctc_step/res_indrnn"], rows["ctc_step/lstm"]
    for r in (ind, lstm):
        assert r["case"] == "ctc_step" and (r["steps"], r["batch"], r["num_layers"]) == (24, 2, 3)
        assert r["encoder_steps"] == 8 and r["subsampling"] == 3
        assert len(r["times_s"]) == 2 and r["median_s"] > 0
    assert ind["hidden"] > lstm["hidden"]  # same budget, an IndRNN unit costs fewer weights
    assert abs(ind["encoder_params"] / lstm["encoder_params"] - 1) <= 0.02  # width_for_params tolerance
    assert abs(ind["params"] / lstm["params"] - 1) <= 0.04  # + the output layer, wider for res_indrnn
    assert ind["speedup_vs_lstm"] == pytest.approx(lstm["median_s"] / ind["median_s"])
    assert lstm["speedup_vs_lstm"] == pytest.approx(1.0)
    md = (out / "bench_cpu_ctc_step.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 4 and table[0].rstrip().endswith("| params |")
    assert all(line.count("|") == table[0].count("|") for line in table)
    assert "CTC training step, B=2, T=24 frames" in md and f"{ind['speedup_vs_lstm']:.2f}x faster" in md


def test_ctc_step_makes_the_model_learn():
    """The timed step is a real training step: repeated on one batch, the CTC loss goes down."""
    from toolkit.bench.ctc_step import CTCConfig, build_task, make_batch, make_step

    torch.manual_seed(0)
    cfg = CTCConfig(batch=2, frames=24, num_layers=1, param_budget=20_000, feat_dim=8)
    task = build_task("res_indrnn", cfg)
    batch = make_batch(cfg, task.tokenizer.vocab_size, torch.device("cpu"))

    def loss() -> float:  # training mode (batch statistics), the same dropout masks each time
        torch.manual_seed(1)
        with torch.no_grad():
            lp, lens = task(batch.feats, batch.feat_lens)
            return float(torch.nn.functional.ctc_loss(lp.transpose(0, 1), batch.tokens, lens, batch.token_lens))

    before, step = loss(), make_step(task, batch)
    for _ in range(10):
        step()
    assert loss() < before


def test_streams_case_writes_capacity_rows(tmp_path):
    """`--case streams` on the tiny size: both rows, equal parameter counts, the capacity search's tries."""
    out = tmp_path / "bench_out"
    assert main(["bench", "--quick", "--case", "streams", "--out", str(out), "--no-progress"]) == 0
    data = json.loads((out / "bench_cpu_streams.json").read_text())
    assert data["skipped"] == 0 and data["meta"]["case"] == "streams" and data["meta"]["device"] == "cpu"
    assert not (out / "bench_cpu.json").exists()
    rows = {r["model"]: r for r in data["rows"]}
    assert set(rows) == {"streams/res_indrnn", "streams/lstm"}
    for r in rows.values():
        assert r["case"] == "streams" and r["chunk_ms"] == 160 and r["decoding"] == "greedy"
        assert 1 <= r["streams"] <= r["max_streams"] and 0 < r["rtf_median"] < 1
        assert r["round_median_s"] < r["chunk_ms"] / 1000 and r["round_p95_s"] >= r["round_median_s"] > 0
        assert [t["streams"] for t in r["tried"]] == sorted({t["streams"] for t in r["tried"]})
    ind, lstm = rows["streams/res_indrnn"], rows["streams/lstm"]
    assert abs(ind["encoder_params"] / lstm["encoder_params"] - 1) <= 0.02
    assert ind["streams_vs_lstm"] == pytest.approx(ind["streams"] / lstm["streams"])
    md = (out / "bench_cpu_streams.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 4 and all(line.count("|") == table[0].count("|") for line in table)
    assert "## Capacity" in md and "real-time streams" in md


def test_streams_case_refuses_cuda(tmp_path, capsys):
    assert main(["bench", "--quick", "--case", "streams", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "--device cpu" in capsys.readouterr().err
