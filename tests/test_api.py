"""The Python API (toolkit.load) and the portable model: a trained model copied anywhere decodes the
same, from any working directory; the API and `recur decode` / `recur lm eval` give the same output."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import toolkit
from toolkit.api import AcousticModel, LanguageModel
from toolkit.cli.main import main


@pytest.fixture(scope="module")
def trained(trained_toy):
    return trained_toy


def cli_lines(capsys, argv) -> list[str]:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def api_lines(result) -> list[str]:
    return [f"{r.id}\t{r.text}" for r in result]


def test_copied_model_decodes_the_same_from_anywhere(trained, tmp_path, monkeypatch, capsys):
    root, exp, _ = trained
    wavs = sorted(str(p) for p in root.glob("test*.wav"))
    in_place = cli_lines(capsys, ["decode", "--model", str(exp), *wavs, "--beam", "4"])
    assert len(in_place) == len(wavs)

    # the experiment folder and a lone best checkpoint copied elsewhere; the tokenizer folder and the
    # CMVN file the model was trained from moved away: nothing may refer to them any more
    copied = tmp_path / "elsewhere" / "model"
    shutil.copytree(exp, copied)
    lone = tmp_path / "shipped.ckpt"
    shutil.copy(exp / "checkpoints" / "best.ckpt", lone)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for name in ("tokenizer", "cmvn.json"):
        shutil.move(root / name, hidden / name)
    third = tmp_path / "third"
    third.mkdir()
    monkeypatch.chdir(third)
    try:
        assert cli_lines(capsys, ["decode", "--model", str(copied), *wavs, "--beam", "4"]) == in_place
        assert cli_lines(capsys, ["decode", "--model", str(lone), *wavs, "--beam", "4"]) == in_place
        assert api_lines(toolkit.load(lone).transcribe(wavs, beam=4)) == in_place
    finally:
        for name in ("tokenizer", "cmvn.json"):
            shutil.move(hidden / name, root / name)


def test_api_and_cli_agree_greedy_kenlm_recur_lm_and_rescoring(trained, tmp_path, capsys):
    root, exp, lm = trained
    model = toolkit.load(exp)
    assert isinstance(model, AcousticModel) and model.sampling_rate == 16000
    manifest = str(root / "test.jsonl")
    settings = [
        ([], {}),
        (["--beam", "4", "--lm", str(root / "bigram.arpa"), "--lm-weight", "1.0", "--word-score", "0.5"],
         {"beam": 4, "lm": str(root / "bigram.arpa"), "lm_weight": 1.0, "word_score": 0.5}),
        (["--beam", "4", "--lm", str(lm), "--lm-weight", "0.5"], {"beam": 4, "lm": str(lm), "lm_weight": 0.5}),
        (["--beam", "4", "--rescore-lm", str(lm), "--rescore-weight", "2", "--nbest", "4", "--blank-penalty", "0.5"],
         {"beam": 4, "rescore_lm": str(lm), "rescore_weight": 2.0, "nbest": 4, "blank_penalty": 0.5}),
    ]  # fmt: skip
    for flags, options in settings:
        out = tmp_path / "cli.txt"
        capsys.readouterr()
        assert main(["decode", "--model", str(exp), manifest, "--out", str(out), *flags]) == 0
        printed = capsys.readouterr().out
        result = model.transcribe(manifest, **options)
        assert api_lines(result) == out.read_text().splitlines(), flags
        # the manifest's references are scored the same way
        assert result.wer is not None and f"WER {100 * result.wer:.2f}%" in printed


def test_waveforms_decode_like_their_files(trained, tmp_path):
    root, exp, _ = trained
    model = toolkit.load(exp)
    wave, sr = sf.read(root / "test0.wav", dtype="float32")
    low = torch.nn.functional.interpolate(torch.from_numpy(wave)[None, None], scale_factor=0.5)[0, 0].numpy()
    sf.write(tmp_path / "low.wav", low, sr // 2, subtype="FLOAT")
    from_file = model.transcribe([str(root / "test0.wav"), str(tmp_path / "low.wav")])
    from_arrays = model.transcribe([wave], sampling_rate=sr).texts + model.transcribe(low, sampling_rate=sr // 2).texts
    assert from_file.texts == from_arrays
    with pytest.raises(ValueError, match="sampling_rate"):
        model.transcribe([wave])
    stereo = np.stack([wave, wave])
    assert model.transcribe(stereo, sampling_rate=sr).texts == from_file.texts[:1]


def test_language_model_api_equals_lm_eval(trained, capsys):
    root, _, lm_exp = trained
    lm = toolkit.load(lm_exp)
    assert isinstance(lm, LanguageModel)
    printed = cli_lines(capsys, ["lm", "eval", "--model", str(lm_exp), "--text", str(root / "lm.txt")])[-1]
    assert f"perplexity {lm.perplexity(root / 'lm.txt'):.3f}" in printed
    lines = (root / "lm.txt").read_text().splitlines()
    assert lm.score(lines).ppl == pytest.approx(lm.perplexity(root / "lm.txt"))


def test_older_checkpoint_loads_in_place_or_says_how_to_convert(trained, tmp_path, capsys):
    root, exp, _ = trained
    old = tmp_path / "old.ckpt"
    ckpt = torch.load(exp / "checkpoints" / "best.ckpt", weights_only=False)
    del ckpt["recur"]  # as written before checkpoints carried their tokenizer: a path to it instead
    ckpt["hyper_parameters"]["tokenizer"] = str(tmp_path / "tok")
    torch.save(ckpt, old)
    wav = str(root / "test1.wav")
    expected = toolkit.load(exp).transcribe(wav).texts
    shutil.copytree(root / "tokenizer", tmp_path / "tok")
    assert toolkit.load(old).transcribe(wav).texts == expected  # its tokenizer is still where it was
    shutil.move(tmp_path / "tok", tmp_path / "moved")
    capsys.readouterr()
    assert main(["decode", "--model", str(old), wav]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "recur convert" in err and "Traceback" not in err
    assert main(["convert", str(old), "--tokenizer", str(tmp_path / "moved")]) == 0
    shutil.rmtree(tmp_path / "moved")
    assert toolkit.load(old).transcribe(wav).texts == expected


def test_wrong_or_broken_checkpoints_are_one_line_errors(trained, tmp_path, capsys):
    root, exp, lm_exp = trained
    text_ckpt = tmp_path / "notes.ckpt"
    text_ckpt.write_text("not a checkpoint\n")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((exp / "checkpoints" / "best.ckpt").read_bytes()[:5000])
    cases = [
        (["lm", "eval", "--model", str(exp), "--text", str(root / "lm.txt")], "acoustic (CTC) model"),
        (["decode", "--model", str(lm_exp), str(root / "test0.wav")], "is a language model"),
        (["decode", "--model", str(text_ckpt), str(root / "test0.wav")], "not a readable checkpoint"),
        (["decode", "--model", str(truncated), str(root / "test0.wav")], "not a readable checkpoint"),
        (["decode", "--model", str(exp), str(root / "test0.wav"), "--beam", "-1"], "--beam must be"),
        *([(["decode", "--model", str(exp), str(root / "test0.wav"), "--device", "cuda"], "no CUDA GPU is visible")]
          if not torch.cuda.is_available() else []),
        (["decode", "--model", str(exp), str(root / "test0.wav"), "--beam", "2", "--lm", str(root / "lm.txt")],
         "not an ARPA language model"),
        (["decode", "--model", str(exp), str(root / "test0.wav"), "--beam", "2", "--lm", str(tmp_path / "no.arpa")],
         "no such file"),
    ]  # fmt: skip
    for argv, expected in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err, (argv, err)


def test_metrics_json_records_named_sets_through_the_api(trained, tmp_path):
    root, exp, _ = trained
    copied = tmp_path / "model"
    shutil.copytree(exp, copied)
    model = toolkit.load(copied)
    result = model.transcribe(str(root / "test.jsonl"), beam=2)
    tag, folder, figures = model.record(result, "test", toolkit.api.DecodeOptions(beam=2))
    assert tag == "test_beam2" and (folder / "errs.txt").is_file()
    final = json.loads((copied / "metrics.json").read_text())["final"]
    assert final["test_beam2/wer"] == pytest.approx(result.wer) == figures["wer"]


def test_references_beside_the_audio_or_in_a_file_are_scored(trained, tmp_path, capsys):
    root, exp, _ = trained
    folder = tmp_path / "clips"
    folder.mkdir()
    entries = [json.loads(line) for line in (root / "test.jsonl").read_text().splitlines()]
    for e in entries[:2]:
        shutil.copy(e["audio_filepath"], folder / f"{e['id']}.wav")
        (folder / f"{e['id']}.txt").write_text(e["text"] + "\n")
    (folder / "gone.wav").symlink_to(tmp_path / "nowhere.wav")  # a broken link: skipped with its reason
    model = toolkit.load(exp)
    by_manifest = model.transcribe(str(root / "test.jsonl"))
    beside = model.transcribe(str(folder))
    two = {e["id"] for e in entries[:2]}
    assert set(beside.refs) == two and beside.skipped[0][0] == "gone" and "broken symbolic link" in beside.skipped[0][1]
    assert beside.texts == [r.text for r in by_manifest if r.id in two]
    # --ref: Kaldi `text` lines; they take precedence over the .txt files
    ref = tmp_path / "text"
    ref.write_text("".join(f"{e['id']} {e['text']} extra\n" for e in entries[:2]))
    capsys.readouterr()
    assert main(["decode", "--model", str(exp), str(folder), "--ref", str(ref)]) == 0
    out, err = capsys.readouterr()
    assert "skipped" in err and "gone.wav" in err
    with_ref = model.transcribe(str(folder), references=ref)
    assert all(text.endswith(" extra") for text in with_ref.refs.values()) and set(with_ref.refs) == two
    assert f"WER {100 * with_ref.wer:.2f}%" in out
    # --set with nothing to score against: a warning, not a silent empty score
    (folder / f"{entries[0]['id']}.txt").unlink()
    (folder / f"{entries[1]['id']}.txt").unlink()
    assert main(["decode", "--model", str(exp), str(folder), "--set", "x"]) == 0
    assert "nothing decoded has a reference" in capsys.readouterr().err
