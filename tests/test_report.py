"""`recur report`: RESULTS.md rows, change against the LSTM baseline, plots; a recipe's RESULTS.md refreshed
between its markers; the adding-problem and pixel-MNIST tables; the reproduction table."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
import torch

from toolkit.cli.main import main
from toolkit.errors import UserError
from toolkit.report import collect_runs, results_markdown
from toolkit.report.results import relative_change
from toolkit.report.sections import replace_section


def fake_run(root, name, wer, params, with_u=False, commit=None):
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
    if commit:
        metrics["commit"] = commit
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


def test_commit_column_recorded_else_report_time(tmp_path):
    from toolkit.report.write import report_commit

    fake_run(tmp_path, "lstm", 0.20, 1000, commit="abc1234")
    fake_run(tmp_path, "res_indrnn", 0.15, 990)  # trained before metrics.json recorded the commit
    text = results_markdown(collect_runs(tmp_path), commit_fallback=report_commit())
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["model"].rstrip(" |").endswith("| hardware | commit")
    assert rows["**lstm**"].endswith("| abc1234 |")
    assert rows["res_indrnn"].endswith(f"| {report_commit()} |")
    assert report_commit() == "unknown" or report_commit().endswith(" (at report time)")


def test_source_commit_is_the_checkouts():
    import subprocess

    from toolkit.train.hardware import source_commit

    source_commit.cache_clear()  # HEAD may have moved since another test asked (a commit during the run)
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        assert source_commit() == "unknown"
        return
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True)
    assert head.returncode != 0 or head.stdout.strip()[:7] in source_commit()


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


# --- a recipe's committed RESULTS.md: the generated section refreshed, the hand-written parts kept -------------

HAND_TOP = "# Results: fsdd\r\n\r\nHand-written intro, CRLF line ends and trailing spaces kept.  \n\n## `exp/fsdd`\n\n"
HAND_BOTTOM = (
    "\n\n## Commands\n\n    recur run recipes/fsdd/recipe.yaml\n\n## What did not help\n\n"
    "- plain batch norm: `recur run recipes/fsdd/recipe.yaml --set ...`\n"
    "<!-- recur report: begin exp/other -->\nanother experiment's table\n<!-- recur report: end -->\ntail"
)


def test_results_refresh_keeps_hand_written_parts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    fake_run(Path("exp/fsdd"), "lstm", 0.20, 1000, commit="abc1234")
    fake_run(Path("exp/fsdd"), "res_indrnn", 0.15, 990, commit="abc1234")
    results = Path("recipes/fsdd/RESULTS.md")
    results.parent.mkdir(parents=True)
    old_table = "<!-- recur report: begin exp/fsdd --> <!-- recur report: end -->"  # the placeholder left for a rerun
    results.write_bytes((HAND_TOP + old_table + HAND_BOTTOM).encode())

    assert main(["report", "exp/fsdd/", "--results", str(results), "--quiet"]) == 0
    assert "refreshed the exp/fsdd section of recipes/fsdd/RESULTS.md" in capsys.readouterr().out
    data = results.read_bytes().decode()
    assert data.startswith(HAND_TOP) and data.endswith(HAND_BOTTOM)  # byte for byte
    generated = data[len(HAND_TOP) : -len(HAND_BOTTOM)]
    assert generated.startswith("<!-- recur report: begin exp/fsdd -->\nGenerated by `recur report exp/fsdd ")
    assert generated.endswith("\n<!-- recur report: end -->")
    rows = [line for line in generated.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| model | params | test/wer | test/cer | Δ vs lstm (test/wer) |")
    assert any(r.startswith("| res_indrnn | 990 | 15.00% |") and r.endswith("| abc1234 |") for r in rows)
    assert (Path("exp/fsdd/RESULTS.md")).is_file()  # the experiment's own page is written as before

    # the same experiment again: nothing to change, the file is not rewritten
    stamp = results.stat()
    os.utime(results, ns=(stamp.st_atime_ns, stamp.st_mtime_ns - 10**9))
    before = results.stat().st_mtime_ns
    assert main(["report", "exp/fsdd", "--results", str(results), "--quiet"]) == 0
    assert "the exp/fsdd section is up to date" in capsys.readouterr().out
    assert results.read_bytes().decode() == data and results.stat().st_mtime_ns == before

    # new figures: only the table changes
    fake_run(Path("exp/fsdd"), "irnn", 0.3, 1010, commit="def5678")
    assert main(["report", "exp/fsdd", "--results", str(results), "--quiet"]) == 0
    new = results.read_bytes().decode()
    assert new.startswith(HAND_TOP) and new.endswith(HAND_BOTTOM) and "| irnn | 1,010 | 30.00% |" in new
    assert not list(results.parent.glob(".*.tmp"))  # atomic write left no temporary file


def test_results_file_created_or_section_added(tmp_path, capsys):
    exp = tmp_path / "exp"
    fake_run(exp, "lstm", 0.20, 1000, commit="abc1234")
    results = tmp_path / "recipes" / "x" / "RESULTS.md"
    assert main(["report", str(exp), "--results", str(results), "--quiet"]) == 0
    assert "created" in capsys.readouterr().out
    text = results.read_text()
    assert text.startswith("# Results: x\n") and "## Commands" in text and "## What did not help" in text
    assert text.index(f"<!-- recur report: begin {exp.as_posix()} -->") < text.index("## Commands")

    other = tmp_path / "exp2"
    fake_run(other, "lstm", 0.10, 1000, commit="abc1234")
    assert main(["report", str(other), "--results", str(results), "--quiet"]) == 0
    assert "added the" in capsys.readouterr().out
    new = results.read_text()
    assert new.startswith(text) and new.endswith("<!-- recur report: end -->\n")
    assert f"## `{other.as_posix()}`\n\n<!-- recur report: begin {other.as_posix()} -->" in new


@pytest.mark.parametrize(
    "text, message",
    [
        ("<!-- recur report: begin exp/a -->\nno end", "do not pair up"),
        ("x\n<!-- recur report: end -->", "line 2: '<!-- recur report: end -->' without a begin marker"),
        ("<!-- recur report: begin exp/a -->\n<!-- recur report: begin exp/b -->\n<!-- recur report: end -->",
         "line 2: a begin marker inside the section opened on line 1"),
        ("<!-- recur report: begin exp/a --><!-- recur report: end -->\n"
         "<!-- recur report: begin exp/a --><!-- recur report: end -->", "line 2: a second section for exp/a"),
    ],
)  # fmt: skip
def test_results_markers_that_do_not_pair_are_one_line_errors(text, message):
    with pytest.raises(UserError) as err:
        replace_section(text, "exp/a", "table\n", where="R.md")
    said = str(err.value)
    assert said.startswith("R.md, line ") and message in said and "\n" not in said


def test_results_refresh_error_leaves_file_alone(tmp_path, capsys):
    fake_run(tmp_path / "exp", "lstm", 0.2, 1000)
    results = tmp_path / "RESULTS.md"
    results.write_text("<!-- recur report: begin exp -->\nunclosed\n")
    assert main(["report", str(tmp_path / "exp"), "--results", str(results), "--quiet"]) == 2
    assert "do not pair up" in capsys.readouterr().err
    assert results.read_text() == "<!-- recur report: begin exp -->\nunclosed\n"
    assert main(["report", str(tmp_path / "exp"), "--results", str(results), "--reproduction"]) == 2
    assert "without --reproduction" in capsys.readouterr().err


# --- the long-memory benchmarks: adding problem per T and model, pixel MNIST ---------------------------------


def fake_adding(root, T, model, curve, test):
    d = root / f"T{T}" / model
    d.mkdir(parents=True)
    m = {
        "params": {"total": 1000},
        "train": {"steps": curve[-1][0], "wall_s": 60.0, "items_per_s": 10.0, "finished": True},
        "history": [{"step": s, "wall_s": 0.9 * s, "val/mse": v} for s, v in curve],
        "best": {"monitor": "val/mse", "mode": "min", "value": min(v for _, v in curve)},
        "final": {"test/mse": test},
        "config": {"model": {"encoder": model}, "data": {"seq_len": T}},
    }
    (d / "metrics.json").write_text(json.dumps(m))


def test_adding_table_solved_per_T_and_model_with_plots(tmp_path, capsys):
    """What recipes/adding/summarize.py did, now `recur report exp/adding` (runs at exp/adding/T<T>/<model>)."""
    fake_adding(tmp_path, 100, "indrnn", [(50, 0.2), (100, 0.009), (150, 0.02), (200, 0.005)], test=0.004)
    fake_adding(tmp_path, 100, "lstm", [(50, 0.17), (100, 0.16)], test=0.16)
    fake_adding(tmp_path, 500, "indrnn", [(50, 0.3)], test=0.02)
    assert main(["report", str(tmp_path), "--quiet"]) == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "### Adding problem" in text and "| model | params | test/mse" not in text  # no table across lengths
    rows = [line for line in text.splitlines() if line.startswith(("| 100 ", "| 500 "))]
    assert [r.split(" | ")[:2] for r in rows] == [["| 100", "indrnn"], ["| 100", "lstm"], ["| 500", "indrnn"]]
    head = next(line for line in text.splitlines() if line.startswith("| T |"))
    assert "| last dev MSE | test MSE | solved (< 0.01) | first dev MSE < 0.01 at step (training time) |" in head
    # last dev, test, solved, first dev MSE below 0.01 (step 100, whose entry says 90 s of training)
    assert "| 0.0050 | 0.0040 | yes | 100 (1.5 min) |" in rows[0]
    assert "| 0.1600 | 0.1600 | no | - |" in rows[1]
    assert "| no | - |" in rows[2]  # test 0.02 is not solved
    for T in (100, 500):
        assert f"(mse_T{T}.png)" in text
        assert (tmp_path / f"mse_T{T}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_table(tmp_path):
    from toolkit.report.write import tables

    for name, permuted, err in (
        ("smnist_lstm", False, 91.0),
        ("pmnist_indrnn", True, 73.8),
        ("smnist_indrnn", False, 53.3),
    ):
        d = tmp_path / name
        d.mkdir()
        m = {
            "params": {"total": 86410},
            "train": {"steps": 208, "wall_s": 486.0, "items_per_s": 22.9},
            "history": [{"step": 200, "val/err": 42.6}],
            "best": {"monitor": "val/err", "mode": "min", "value": 42.6, "step": 200},
            "final": {"test/err": err},
            "config": {"model": {"encoder": name.split("_")[1]}, "data": {"permuted": permuted, "test_limit": 2000}},
        }
        (d / "metrics.json").write_text(json.dumps(m))
    text = tables(collect_runs(tmp_path))
    rows = [line for line in text.splitlines() if line.startswith(("| sequential", "| permuted"))]
    assert [r.split(" | ")[:2] for r in rows] == [
        ["| sequential", "indrnn"],
        ["| sequential", "lstm"],
        ["| permuted", "indrnn"],
    ]
    assert "| 86,410 | 208 | 8.1 min | 23 | 42.6 (200) | 53.3 (first 2,000) |" in rows[0]


def test_report_modules_import_no_cycle():
    """toolkit.report's modules import each other in one direction only (a module-level cycle was fixed)."""
    folder = Path(__file__).resolve().parents[1] / "toolkit" / "report"
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    deps.add(node.module.split(".")[0])
                elif node.level == 1:
                    deps.update(a.name for a in node.names)
                elif (node.module or "").startswith("toolkit.report."):
                    deps.add(node.module.split(".")[2])
        graph[path.stem] = deps - {path.stem}
    graph.pop("__init__")

    def reaches(start, target, seen=()):
        return any(d == target or (d not in seen and reaches(d, target, (*seen, d))) for d in graph.get(start, ()))

    assert not [m for m in graph if reaches(m, m)], graph


def test_empty_adding_root_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "T100").mkdir()
    assert main(["report", str(tmp_path)]) == 2
    assert "no metrics.json" in capsys.readouterr().err


def test_streamed_sets_get_their_own_table(tmp_path):
    from toolkit.report.results import streaming_table

    fake_run(tmp_path, "lstm", 0.20, 1000)
    fake_run(tmp_path, "res_indrnn", 0.15, 990)
    path = tmp_path / "res_indrnn" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["final"].update({
        "test_stream160/wer": 0.02, "test_stream160/cer": 0.01, "test_stream160/rtf": 0.031,
        "test_stream160/chunk_ms": 160.0, "test_stream160/chunk_compute_median_ms": 2.5,
        "test_stream160/chunk_compute_p95_ms": 4.0, "test_stream160/latency_median_ms": 3.25,
    })  # fmt: skip
    path.write_text(json.dumps(metrics))
    runs = collect_runs(tmp_path)
    table = streaming_table(runs)
    rows = [line for line in table.splitlines() if line.startswith("| res_indrnn")]
    assert rows == ["| res_indrnn | test_stream160 | 160 | 2.00% | 1.00% | 0.031 | 2.5 / 4 | 3.25 |"]
    assert streaming_table([r for r in runs if r.name == "lstm"]) == ""
    assert main(["report", str(tmp_path)]) == 0
    assert "| res_indrnn | test_stream160 |" in (tmp_path / "RESULTS.md").read_text()
