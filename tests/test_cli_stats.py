"""`recur stats` reads the sampling rate from the manifest (and picks the mel bins from it) instead of
silently assuming 16 kHz and 80 bins."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from toolkit.cli.main import main
from toolkit.data.manifest import write_manifest


def test_stats_takes_the_manifests_rate_and_matching_mel_bins(tmp_path, capsys):
    entries = []
    for i in range(3):
        t = np.arange(8000) / 8000
        sf.write(tmp_path / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t), 8000)
        entries.append({"id": str(i), "audio_filepath": str(tmp_path / f"{i}.wav"), "duration": 1.0, "text": "a",
                        "sampling_rate": 8000})  # fmt: skip
    write_manifest(tmp_path / "train.jsonl", entries)
    assert main(["stats", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "cmvn.json")]) == 0
    assert "8000 Hz, 40 mel bins" in capsys.readouterr().out
    stats = json.loads((tmp_path / "cmvn.json").read_text())
    assert stats["dim"] == stats["num_mel_bins"] == 40 and stats["sampling_rate"] == 8000  # for fit --data_dir
    assert main(["stats", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "c16.json"),
                 "--sampling-rate", "16000"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "c16.json").read_text())["dim"] == 80
    assert main(["stats", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "bad.json"),
                 "--num-mel-bins", "-3"]) == 2  # fmt: skip
    assert "give positive values" in capsys.readouterr().err and not (tmp_path / "bad.json").exists()
