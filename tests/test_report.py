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


def fake_metrics(root, rel, task, model, data, final, train=None, config_yaml=True, hardware="cuda: H100"):
    """A metrics.json (and config.yaml) as `recur fit` writes them, at root/rel."""
    d = root / rel
    d.mkdir(parents=True)
    metrics = {
        "task": task,
        "hardware": hardware,
        "params": {"total": 1234},
        "train": train or {"wall_s": 90.0, "steps": 500, "finished": True},
        "best": {"monitor": "val/x", "mode": "min", "value": 1.0},
        "history": [],
        "final": final,
        "config": {"model": model, "data": data},
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    if config_yaml:
        (d / "config.yaml").write_text(f"exp_dir: {d}\n")
    return d


SEQ, LM, CTC = "toolkit.tasks.seq.SeqTask", "toolkit.tasks.lm.LMTask", "toolkit.tasks.asr.CTCTask"


def reproduction_tree(root):
    fake_metrics(root, "adding/T1000/indrnn", SEQ, {"encoder": "indrnn"}, {"seq_len": 1000}, {"test/mse": 0.004})
    fake_metrics(root, "adding/T1000/lstm", SEQ, {"encoder": "lstm"}, {"seq_len": 1000}, {"test/mse": 0.166})
    fake_metrics(root, "adding/T100/gru", SEQ, {"encoder": "gru"}, {"seq_len": 100}, {"test/mse": 0.002},
                 train={"wall_s": 7200.0, "steps": 10, "finished": False})  # fmt: skip
    fake_metrics(root, "seq_mnist/pmnist_res_indrnn", SEQ, {"encoder": "res_indrnn"},
                 {"permuted": True, "test_limit": 2000}, {"test/err": 3.5})  # fmt: skip
    fake_metrics(root, "seq_mnist/smnist_irnn", SEQ, {"encoder": "irnn"}, {"permuted": False}, {"test/err": 2.25},
                 config_yaml=False)  # fmt: skip
    fake_metrics(root, "ptb_char/res_indrnn", LM, {"encoder": "res_indrnn", "report_bpc": True},
                 {"train": "exp/ptb_char/data/train.txt"}, {"test/bpc": 1.4})  # fmt: skip
    fake_metrics(root, "ptb_word/lstm", LM, {"encoder": "lstm"},
                 {"train": "exp/ptb_word/data/train.txt", "test": "exp/ptb_word/data/test.txt"},
                 {"test/ppl": 99.0, "test_full/ppl": 98.5})  # fmt: skip
    fake_metrics(root, "fsdd/res_indrnn", CTC, {"encoder": "res_indrnn"}, {"train": "x.jsonl"}, {"test/wer": 0.1})
    fake_metrics(root, "fsdd/res_indrnn.stale-20260101-000000", CTC, {"encoder": "res_indrnn"}, {}, {"test/wer": 0.9})


def test_reproduction_rows_pair_paper_and_ours(tmp_path):
    from toolkit.report.reproduction import build_rows

    root = tmp_path / "exp"
    reproduction_tree(root)
    rows = {r.run.strip("`").removeprefix(str(root) + "/"): r for r in build_rows(root)}
    assert list(rows) == [  # experiments in order (adding by T), models in order within each; stale run left out
        "adding/T100/gru", "adding/T1000/indrnn", "adding/T1000/lstm", "seq_mnist/smnist_irnn",
        "seq_mnist/pmnist_res_indrnn", "ptb_char/res_indrnn", "ptb_word/lstm", "fsdd/res_indrnn",
    ]  # fmt: skip
    ind, lstm = rows["adding/T1000/indrnn"], rows["adding/T1000/lstm"]
    assert ind.experiment == "adding, T=1000" and ind.paper.startswith("converges")
    assert ind.ours == "test MSE 0.0040 (solved)"
    assert lstm.paper.startswith("fails") and lstm.ours == "test MSE 0.1660 (not solved)"
    gru = rows["adding/T100/gru"]
    assert gru.paper == "no paper figure" and gru.wall == "2.00 h" and gru.steps == "10 (unfinished)"
    pm = rows["seq_mnist/pmnist_res_indrnn"]
    assert pm.experiment == "permuted MNIST" and pm.paper.startswith("2.98% test error")
    assert pm.ours == "3.50% test error (first 2,000 test images)"
    sm = rows["seq_mnist/smnist_irnn"]
    assert sm.experiment == "sequential MNIST" and sm.paper.startswith("3% test error")
    assert sm.config == "-" and "no config.yaml" in sm.command
    char = rows["ptb_char/res_indrnn"]
    assert char.experiment == "PTB char" and char.paper.startswith("1.19 BPC") and char.ours == "1.40 BPC"
    word = rows["ptb_word/lstm"]
    assert word.paper.startswith("57.3 test ppl, AWD-LSTM") and word.ours == "98.50 test ppl"  # whole-file eval
    assert f"recur lm eval --model {root}/ptb_word/lstm.rerun --text exp/ptb_word/data/test.txt" in word.command
    fsdd = rows["fsdd/res_indrnn"]
    assert fsdd.experiment == "fsdd" and fsdd.paper == "no paper figure" and fsdd.ours == "10.00% test/wer"
    assert fsdd.config == f"`{root}/fsdd/res_indrnn/config.yaml`"
    cfg = f"{root}/fsdd/res_indrnn/config.yaml"
    assert fsdd.command == f"`recur fit --config {cfg} --exp_dir {root}/fsdd/res_indrnn.rerun`"
    assert fsdd.hardware == "cuda: H100" and fsdd.wall == "1.5 min" and fsdd.steps == "500" and fsdd.params == "1,234"


def test_reproduction_cli_writes_markdown(tmp_path, capsys):
    root = tmp_path / "exp"
    reproduction_tree(root)
    out = tmp_path / "docs" / "repro.md"
    assert main(["report", str(root), "--reproduction", "--out", str(out)]) == 0
    text = out.read_text()
    assert text == capsys.readouterr().out.split(f"recur report: wrote {out}")[0].rstrip("\n") + "\n"
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0].startswith("| experiment | run | model | params | paper | ours | config | command | hardware")
    assert len(table) == 2 + 8
    assert all(line.replace("\\|", "").count("|") == table[0].count("|") for line in table)
    assert "stale" not in text and f"recur report {root} --reproduction" in text
    assert main(["report", str(root), "--reproduction", "--quiet"]) == 0
    assert (root / "REPRODUCTION.md").read_text().startswith(f"# Reproduction table: {root}")


def test_reproduction_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--reproduction"]) == 2
    assert "no metrics.json below it" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing"), "--reproduction"]) == 2
    assert "experiment root not found" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "x.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--out is for --reproduction" in err and len(err.splitlines()) == 1
