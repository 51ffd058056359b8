"""data_prep.kaldi: importing a data dir (plain paths, piped commands, segments) and exporting one."""

import shutil

import pytest
import soundfile as sf
from audio_fixtures import tone

from data_prep import kaldi
from toolkit.data.manifest import read_manifest
from toolkit.errors import UserError


def kaldi_dir(root, piped=True):
    d = root / "data" / "train"
    d.mkdir(parents=True)
    tone(root / "rec1.wav", 2.0, seed=1)
    tone(root / "rec2.wav", 1.0, seed=2)
    scp = [f"rec1 {root / 'rec1.wav'}", "rec3 feats.ark:1234"]
    if piped:
        scp += [f"rec2 cat {root / 'rec2.wav'} |", "rec4 false |"]
    (d / "wav.scp").write_text("\n".join(scp) + "\n")
    (d / "segments").write_text("spk1-a rec1 0.00 0.80\nspk1-b rec1 0.80 1.90\nspk1-c rec1 1.50 2.50\n"
                                "spk2-a rec2 0.1 0.9\nspk3-a rec3 0 1\nspk4-a rec4 0 1\nspk1-d rec1 1.0 1.0\n")
    (d / "text").write_text("spk1-a hello\nspk1-b world\nspk1-c beyond the end\nspk2-a piped audio\n"
                            "spk3-a ark\nspk4-a fails\nspk1-d zero\n")
    (d / "utt2spk").write_text("spk1-a spk1\nspk1-b spk1\nspk2-a spk2\n")
    return d


def test_import_with_segments_and_pipes(tmp_path):
    d = kaldi_dir(tmp_path)
    res = kaldi.prepare(d, tmp_path / "out", jobs=2)
    assert res.counts == {"train": 3}
    assert res.skipped == {"segment outside the recording": 1, "archive entry": 1, "command failed": 1,
                           "zero length segment": 1}
    entries = {e["id"]: e for e in read_manifest(tmp_path / "out" / "train.jsonl")}
    assert entries["spk1-b"]["offset"] == 0.8 and entries["spk1-b"]["duration"] == pytest.approx(1.1)
    assert entries["spk1-a"]["speaker"] == "spk1"
    piped = entries["spk2-a"]["audio_filepath"]
    assert piped.startswith(str(tmp_path / "out" / "wav")) and sf.info(piped).frames == 16000


def test_missing_program_is_one_clear_error_before_writing(tmp_path):
    d = kaldi_dir(tmp_path, piped=False)
    with open(d / "wav.scp", "a") as f:
        f.write("rec9 no-such-sox-binary -t wav x.sph - |\n")
    with pytest.raises(UserError, match=r"wav.scp:3: .*no-such-sox-binary.*not installed"):
        kaldi.prepare(d, tmp_path / "out")
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_export_then_import_gives_the_same_utterances(tmp_path):
    d = kaldi_dir(tmp_path, piped=False)
    kaldi.prepare(d, tmp_path / "m", jobs=1)
    tone(tmp_path / "x.flac", 0.5)
    with open(tmp_path / "m" / "train.jsonl", "a") as f:
        f.write('{"id": "spk9-x", "audio_filepath": "%s", "duration": 0.5, "text": "flac file", '
                '"sampling_rate": 16000}\n' % (tmp_path / "x.flac"))
    out = kaldi.export(tmp_path / "m" / "train.jsonl", tmp_path / "kd")
    assert (out / "segments").read_text().splitlines()[0] == "spk1-a rec1 0.000 0.800"
    assert "sox " in (out / "wav.scp").read_text()  # non-WAV audio goes through a pipe, as Kaldi needs
    assert (out / "spk2utt").read_text().splitlines()[0] == "spk1 spk1-a spk1-b"
    if shutil.which("sox"):
        back = kaldi.prepare(out, tmp_path / "again", split="train", jobs=1)
        assert back.counts == {"train": 3}
