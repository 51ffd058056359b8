"""What ``recur decode`` prints: the transcripts of what it is given (``id<TAB>text``), except for a
recorded set (``--set`` with references), whose transcripts go into ``decode/<set>/recogs.txt`` while only
its summary is printed, as a recipe wants; ``--out`` takes the transcripts in either case."""

from __future__ import annotations

import shutil

import pytest

from toolkit.cli.main import main


@pytest.fixture(scope="module")
def toy(trained_toy, tmp_path_factory):
    root, exp, _ = trained_toy
    model = tmp_path_factory.mktemp("decode") / "am"
    shutil.copytree(exp, model)  # this module's decodes must not change the shared experiment's metrics
    ids = [f"test{i}" for i in range(4)]
    return root, model, ids


def decode(capsys, *args):
    capsys.readouterr()
    assert main(["decode", *map(str, args)]) == 0
    return capsys.readouterr()


def test_a_file_prints_its_transcript(toy, capsys):
    root, model, _ = toy
    out = decode(capsys, "--model", model, root / "test0.wav").out.splitlines()
    assert len(out) == 1 and out[0].startswith("test0\t")  # no reference beside it: nothing scored
    # with --set but nothing to score, the transcripts are printed: no file would hold them
    out = decode(capsys, "--model", model, root / "test0.wav", "--set", "x").out.splitlines()
    assert len(out) == 1 and out[0].startswith("test0\t")


def test_a_recorded_set_prints_its_summary_and_keeps_the_transcripts_in_recogs(toy, capsys):
    root, model, ids = toy
    captured = decode(capsys, "--model", model, root / "test.jsonl", "--set", "test")
    out = captured.out.splitlines()
    recogs = model / "decode" / "test" / "recogs.txt"
    assert out == [line for line in out if line.startswith("recur decode: test: WER ")] and len(out) == 1
    assert out[0].endswith(f"({model / 'decode' / 'test'}; transcripts in {recogs})")
    hyps = [line.split("\t")[0] for line in recogs.read_text().splitlines() if "\thyp=" in line]
    assert hyps == ids
    assert "4 decoded, 0 skipped" in captured.err


def test_without_set_or_with_out_the_transcripts_go_where_they_always_went(toy, capsys, tmp_path):
    root, model, ids = toy
    out = decode(capsys, "--model", model, root / "test.jsonl").out.splitlines()
    assert [line.split("\t")[0] for line in out[:-1]] == ids  # an ad-hoc decode: every transcript
    assert out[-1].startswith("recur decode: test: WER ") and "transcripts in" not in out[-1]
    hyp = tmp_path / "hyp.txt"
    out = decode(capsys, "--model", model, root / "test.jsonl", "--set", "test", "--out", hyp).out.splitlines()
    assert [line.split("\t")[0] for line in hyp.read_text().splitlines()] == ids
    assert len(out) == 1 and "transcripts in" not in out[0]
