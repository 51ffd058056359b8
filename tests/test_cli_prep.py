"""`recur prep` from the command line: summary, idempotence message, one-line errors."""

from audio_fixtures import tone

from toolkit.cli.main import main


def fsdd(root):
    for idx in (1, 7, 8):
        tone(root / "recordings" / f"3_nicolas_{idx}.wav", 0.3, sr=8000, seed=idx)
    return root


def test_prep_prints_a_summary_and_reuses_work(tmp_path, capsys):
    src = fsdd(tmp_path / "fsdd")
    assert main(["prep", "fsdd", "--src", str(src), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "train 2 utts" in out and "test 1 utts" in out and "skipped 0" in out
    assert main(["prep", "fsdd", "--src", str(src), "--out", str(tmp_path / "out")]) == 0
    assert "already prepared" in capsys.readouterr().out


def test_bad_source_is_one_line_without_traceback(tmp_path, capsys):
    assert main(["prep", "ljspeech", "--src", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recur prep: error:") and "nowhere" in err and "\n" not in err
    assert "Traceback" not in err
    assert main(["prep", "fsdd", "--src", str(tmp_path), "--out", str(tmp_path / "o"), "--jobs", "0"]) == 2
