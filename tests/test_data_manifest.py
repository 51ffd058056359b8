"""toolkit.data.manifest and io: validation, atomic writes, filtering, rejection lists."""

import json

import pytest

from toolkit.data.io import atomic_open
from toolkit.data.manifest import Rejections, filter_manifest, read_manifest, total_hours, write_manifest
from toolkit.errors import UserError


def entry(i, dur=1.0, text="hello world", **kw):
    return {"id": f"u{i}", "audio_filepath": f"wavs/u{i}.wav", "duration": dur, "text": text,
            "sampling_rate": 16000, **kw}


def test_roundtrip_resolves_relative_paths(tmp_path):
    rows = [entry(0), entry(1, 2.5, "ça va", speaker="s1", offset=0.5)]
    assert write_manifest(tmp_path / "m.jsonl", rows) == 2
    back = read_manifest(tmp_path / "m.jsonl")
    assert [e["id"] for e in back] == ["u0", "u1"]
    assert back[1]["text"] == "ça va" and back[1]["speaker"] == "s1" and back[1]["offset"] == 0.5
    assert back[0]["audio_filepath"] == str(tmp_path.resolve() / "wavs/u0.wav")
    assert read_manifest(tmp_path / "m.jsonl", resolve_paths=False)[0]["audio_filepath"] == "wavs/u0.wav"
    assert total_hours(back) == pytest.approx(3.5 / 3600)


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"id": "a"}), "missing key"),
    (json.dumps(entry(0, dur=-1)), "duration"),
    (json.dumps(entry(0, sampling_rate=0)), "sampling_rate"),
    (json.dumps({**entry(0), "id": "a b"}), "whitespace"),
])
def test_bad_lines_are_named_with_file_and_line(tmp_path, bad, message):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps(entry(9)) + "\n" + bad + "\n")
    with pytest.raises(UserError, match=message) as err:
        read_manifest(p)
    assert "m.jsonl:2" in str(err.value)


def test_duplicate_ids_and_missing_file(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps(entry(1)) + "\n" + json.dumps(entry(1)) + "\n")
    with pytest.raises(UserError, match="duplicate id"):
        read_manifest(p)
    with pytest.raises(UserError, match="recur prep"):
        read_manifest(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="duplicate"):
        write_manifest(tmp_path / "w.jsonl", [entry(1), entry(1)])
    assert not (tmp_path / "w.jsonl").exists()


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "m.jsonl"
    write_manifest(p, [entry(0)])
    before = p.read_bytes()
    with pytest.raises(RuntimeError), atomic_open(p) as f:
        f.write("half a line")
        raise RuntimeError("killed")
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.jsonl"]
    with pytest.raises(ValueError):
        write_manifest(p, [entry(0), {"id": "x"}])
    assert p.read_bytes() == before


def test_filter_by_duration_and_text_length():
    rows = [entry(0, 0.1), entry(1, 5.0), entry(2, 50.0), entry(3, 5.0, "x"), entry(4, 5.0, "y" * 500)]
    kept, dropped = filter_manifest(rows, min_duration=0.5, max_duration=20, min_text=2, max_text=400)
    assert [e["id"] for e in kept] == ["u1"]
    reasons = {e["id"]: r for e, r in dropped}
    assert reasons["u0"].startswith("too short") and reasons["u2"].startswith("too long")
    assert reasons["u3"].startswith("text too short") and reasons["u4"].startswith("text too long")


def test_rejections_count_kinds_and_write_tsv(tmp_path):
    rej = Rejections()
    rej.add("train", "a", "/x/a.wav", "too long (4000.0 s > 60 s)")
    rej.add("train", "b", "/x/b.wav", "too long (90.0 s > 60 s)")
    rej.add("dev", "c", "/x/c.wav", "silence only")
    assert rej.counts() == {"too long": 2, "silence only": 1}
    assert rej.counts("dev") == {"silence only": 1}
    rej.write(tmp_path / "rejected.tsv")
    rows = [line.split("\t") for line in (tmp_path / "rejected.tsv").read_text().splitlines()]
    assert rows[0] == ["split", "id", "source", "reason"] and rows[3] == ["dev", "c", "/x/c.wav", "silence only"]


def test_atomic_write_gets_the_mode_plain_open_would(tmp_path):
    import os

    from toolkit.data.io import write_text

    old = os.umask(0o022)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        written = write_text(tmp_path / "atomic.txt", "x")
    finally:
        os.umask(old)
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644
