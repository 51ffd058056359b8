"""Kaldi data directories: import (``wav.scp``, ``text``, optional ``segments`` and ``utt2spk``) and export.

``wav.scp`` lines are ``<recording> <path>`` or ``<recording> <command> |`` (e.g. ``sox ... -t wav - |``):
a command is run once per recording and its output saved under ``<out>/wav/``; when the program is
not installed the import stops with a one-line error naming it, before anything is written.
Archive offsets (``foo.ark:123``) are not audio files and are rejected per line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

from data_prep.common import (
    DEFAULT_MAX_DURATION,
    Candidate,
    Result,
    already_done,
    default_jobs,
    options_key,
    parallel_map,
    require_dir,
    write_corpus,
)
from toolkit.data.io import atomic_open, write_lines
from toolkit.data.manifest import Rejections, read_manifest
from toolkit.data.text import read_lines
from toolkit.errors import UserError

HELP = "import a Kaldi data dir (wav.scp incl. piped commands, text, segments, utt2spk), or --export one"


def _table(path: Path, rej: Rejections, split: str) -> dict[str, tuple[int, str]]:
    """``key -> (line number, rest of line)`` of a Kaldi table file; missing file -> empty."""
    if not path.is_file():
        return {}
    lines, bad = read_lines(path)
    for lineno, why in bad:
        rej.add(split, f"{path.name}:{lineno}", str(path), why)
    table: dict[str, tuple[int, str]] = {}
    for lineno, line in enumerate(lines, 1):
        key, _, rest = line.strip().partition(" ")
        if not key:
            continue
        if key in table:
            rej.add(split, key, f"{path}:{lineno}", "duplicate id (an earlier line has it)")
            continue
        table[key] = (lineno, rest.strip())
    return table


def _check_commands(scp: Path, wav: dict[str, tuple[int, str]]) -> None:
    for _rec, (lineno, value) in wav.items():
        if value.endswith("|"):
            try:
                prog = shlex.split(value[:-1])[0]
            except (ValueError, IndexError):
                raise UserError(f"{scp}:{lineno}: cannot parse the command {value!r}") from None
            if shutil.which(prog) is None:
                raise UserError(f"{scp}:{lineno}: the command needs `{prog}`, which is not installed: install it "
                                f"(e.g. `apt-get install {prog}`) or convert the audio to WAV files first")


def _run_pipe(args: tuple[str, str, Path]) -> str | None:
    """Run ``command |`` writing its stdout to ``dest``; returns None or the reason it failed."""
    _rec, command, dest = args
    if dest.is_file() and dest.stat().st_size > 0:
        return None
    try:
        with atomic_open(dest, "wb") as f:
            proc = subprocess.run(command, shell=True, stdout=f, stderr=subprocess.PIPE, timeout=600, check=False)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["failed"])
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        msg = err.args[0][0] if isinstance(err, RuntimeError) else "timed out"
        return f"command failed ({msg})"
    return None


def prepare(src: str | os.PathLike, out: str | os.PathLike, split: str | None = None,
            max_duration: float = DEFAULT_MAX_DURATION, jobs: int | None = None, force: bool = False) -> Result:
    """Import the Kaldi data dir ``src`` into ``<out>/<split>.jsonl`` (split defaults to the dir's name)."""
    src = require_dir(src, "Kaldi data dir", "give the folder holding wav.scp and text")
    split = split or src.name
    scp = src / "wav.scp"
    for need in (scp, src / "text"):
        if not need.is_file():
            raise UserError(f"{need} not found: a Kaldi data dir needs wav.scp and text")
    key = options_key("kaldi", src, {"split": split, "max_duration": max_duration})
    if done := already_done(out, key, force):
        return done
    rej = Rejections()
    wav, text = _table(scp, rej, split), _table(src / "text", rej, split)
    segments, utt2spk = _table(src / "segments", rej, split), _table(src / "utt2spk", rej, split)
    _check_commands(scp, wav)
    # recordings -> a readable file
    audio: dict[str, str] = {}
    bad_rec: dict[str, str] = {}
    pipes = []
    for rec, (_, value) in wav.items():
        if value.endswith("|"):
            dest = Path(out) / "wav" / f"{rec}.wav"
            pipes.append((rec, value[:-1].strip(), dest))
            audio[rec] = str(dest)
        elif ".ark:" in value or value.endswith(".ark"):
            bad_rec[rec] = "archive entry (ark), not an audio file"
        else:
            path = Path(value)
            audio[rec] = str(path if path.is_absolute() else src / path)
    for (rec, _, _), why in zip(pipes, parallel_map(_run_pipe, pipes, jobs or default_jobs(), "kaldi: commands"),
                                strict=True):
        if why:
            bad_rec[rec] = why
    cands = []
    if segments:
        items = []
        for utt, (lineno, rest) in segments.items():
            parts = rest.split()
            try:
                rec, start, end = parts[0], float(parts[1]), float(parts[2])
            except (IndexError, ValueError):
                rej.add(split, utt, f"{src / 'segments'}:{lineno}", "bad segments line (want utt rec start end)")
                continue
            items.append((utt, rec, start, end))
    else:
        items = [(rec, rec, None, None) for rec in wav]
    for utt, rec, start, end in items:
        spk = utt2spk.get(utt, (0, None))[1]
        txt = text.get(utt, (0, None))[1]
        c = Candidate(split, utt, audio.get(rec, ""), txt, speaker=spk)
        if rec not in wav:
            c.problem = f"recording {rec} not in wav.scp"
        elif rec in bad_rec:
            c.problem = bad_rec[rec]
        elif utt not in text:
            c.problem = "no transcript (not in text)"
        if start is not None:
            if end <= start:
                c.problem = c.problem or f"zero length segment ({start} - {end})"
            c.offset, c.duration = start, end - start
        cands.append(c)
    return write_corpus("kaldi", out, cands, key, (split,), max_duration, jobs or default_jobs(), rej)


def export(manifest: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the manifest as a Kaldi data dir (wav.scp, text, utt2spk, spk2utt, segments if offsets)."""
    entries = sorted(read_manifest(manifest), key=lambda e: e["id"])
    out = Path(out)
    recs: dict[str, str] = {}
    seg_lines, wav_lines = [], []
    for e in entries:
        path = e["audio_filepath"]
        rec = Path(path).stem if "offset" in e else e["id"]
        if rec not in recs:
            recs[rec] = path
            fmt = path if path.lower().endswith(".wav") else f"sox {shlex.quote(path)} -t wav - |"
            wav_lines.append(f"{rec} {fmt}")
        if "offset" in e:
            seg_lines.append(f"{e['id']} {rec} {e['offset']:.3f} {e['offset'] + e['duration']:.3f}")
    spk2utt = defaultdict(list)
    for e in entries:
        spk2utt[e.get("speaker") or e["id"]].append(e["id"])
    write_lines(out / "wav.scp", sorted(wav_lines))
    write_lines(out / "text", (f"{e['id']} {e['text']}" for e in entries))
    write_lines(out / "utt2spk", (f"{e['id']} {e.get('speaker') or e['id']}" for e in entries))
    write_lines(out / "spk2utt", (f"{s} {' '.join(u)}" for s, u in sorted(spk2utt.items())))
    if seg_lines:
        write_lines(out / "segments", seg_lines)
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default=None, help="manifest name (default: the data dir's name)")
    parser.add_argument("--export", action="store_true",
                        help="the other way: --src is a manifest, --out the Kaldi data dir to write")


def from_args(args: argparse.Namespace) -> Result:
    if args.export:
        if not Path(args.src).is_file():
            raise UserError(f"--export needs a manifest as --src; {args.src} is not a file")
        out = export(args.src, args.out)
        n = sum(1 for _ in open(out / "text", encoding="utf-8"))
        return Result("kaldi export", str(out), {"text": n}, {}, {}, ["wav.scp", "text", "utt2spk", "spk2utt"])
    return prepare(args.src, args.out, args.split, args.max_duration, args.jobs, args.force)
