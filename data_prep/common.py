"""What every corpus preparation shares: candidates -> checked audio -> manifests, rejected.tsv, summary.

A corpus module lists *candidates* (id, audio path, transcript or the reason it has none, split);
``write_corpus`` probes the audio in parallel, rejects bad items with a one-line reason, and writes
``<split>.jsonl`` per split, ``rejected.tsv`` and a ``prep.json`` stamp, each atomically, the stamp
last. A rerun with the same options finds the stamp and skips the work unless ``force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.data.audio import BadAudio, probe_audio
from toolkit.data.io import atomic_open, write_json, write_lines
from toolkit.data.manifest import Rejections, write_manifest
from toolkit.errors import UserError

STAMP = "prep.json"
DEFAULT_MAX_DURATION = 60.0


@dataclass
class Candidate:
    """One utterance as a corpus lists it, before its audio is checked."""

    split: str
    id: str
    audio: str
    text: str | None
    problem: str | None = None  # known before probing (e.g. "empty transcript")
    speaker: str | None = None
    offset: float | None = None
    duration: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """What a preparation produced: utterances and hours per split, skipped items by reason."""

    corpus: str
    out: str
    counts: dict[str, int]
    hours: dict[str, float]
    skipped: dict[str, int]
    files: list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    unit: str = "utts"
    reused: bool = False

    def summary(self) -> str:
        if self.unit == "utts":
            parts = [f"{s} {n:,} utts ({self.hours.get(s, 0.0):.2f} h)" for s, n in self.counts.items()]
        else:
            parts = [f"{s} {n:,} {self.unit}" for s, n in self.counts.items()]
        lines = [f"{self.corpus}: " + ", ".join(parts) + f" -> {self.out}"]
        for k, v in self.extra.items():
            lines.append(f"  {k}: {v:,}" if isinstance(v, int) else f"  {k}: {v}")
        total = sum(self.skipped.values())
        if total:
            why = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items(), key=lambda kv: -kv[1]))
            lines.append(f"  skipped {total}: {why} (listed in {Path(self.out) / 'rejected.tsv'})")
        else:
            lines.append("  skipped 0")
        if self.reused:
            lines.append("  (already prepared with these options; --force redoes it)")
        return "\n".join(lines)


def options_key(corpus: str, src: str | os.PathLike, options: dict[str, Any]) -> dict[str, Any]:
    """What a stamp must match for a rerun to be skipped: corpus, source (absolute) and options."""
    where = str(Path(src).resolve()) if Path(src).exists() else str(src)
    return {"corpus": corpus, "src": where, "options": options}


def already_done(out: str | os.PathLike, key: dict[str, Any], force: bool) -> Result | None:
    """The stored Result when ``out`` was prepared with the same key and all its files are there."""
    stamp = Path(out) / STAMP
    if force or not stamp.is_file():
        return None
    try:
        obj = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if obj.get("key") != key or not all((Path(out) / f).is_file() for f in obj["result"]["files"]):
        return None
    return Result(**{**obj["result"], "reused": True})


def mark_done(result: Result, key: dict[str, Any]) -> None:
    data = {k: v for k, v in result.__dict__.items() if k != "reused"}
    write_json(Path(result.out) / STAMP, {"key": key, "result": data})


def require_dir(path: str | os.PathLike, what: str, hint: str) -> Path:
    """``path`` as a Path, or UserError naming it and how to get the corpus."""
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"{what} not found at {p}: {hint}")
    return p


def progress(iterable: Iterable, total: int | None, desc: str, unit: str = "file") -> Iterable:
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=None, file=sys.stderr)


def parallel_map(fn: Callable, items: Sequence, jobs: int, desc: str) -> list:
    """``[fn(x) for x in items]`` on ``jobs`` threads, in order, with a progress bar.

    Threads suffice: soundfile and numpy release the GIL while decoding.
    """
    jobs = max(1, jobs)
    if jobs == 1:
        return [fn(x) for x in progress(items, len(items), desc)]
    with ThreadPoolExecutor(jobs) as pool:
        return list(progress(pool.map(fn, items), len(items), desc))


def default_jobs() -> int:
    return min(8, os.cpu_count() or 1)


def write_corpus(
    corpus: str,
    out: str | os.PathLike,
    candidates: Sequence[Candidate],
    key: dict[str, Any],
    splits: Sequence[str],
    max_duration: float = DEFAULT_MAX_DURATION,
    jobs: int = 1,
    rejections: Rejections | None = None,
    text_files: dict[str, Iterable[str]] | None = None,
    manifest_name: Callable[[str], str] = lambda s: f"{s}.jsonl",
    extra: dict[str, Any] | None = None,
) -> Result:
    """Probe, filter and write everything for one corpus (see the module docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rej = rejections if rejections is not None else Rejections()

    def check(c: Candidate) -> tuple[Candidate, dict | str]:
        if c.problem:
            return c, c.problem
        if c.text is None or not c.text.strip():
            return c, "empty transcript"
        try:
            info = probe_audio(c.audio, max_duration=max_duration if c.offset is None else float("inf"))
        except BadAudio as err:
            return c, str(err)
        except OSError as err:
            return c, f"unreadable ({err.strerror or err})"
        duration = info.duration if c.duration is None else c.duration
        offset = c.offset or 0.0
        if c.offset is not None and offset + duration > info.duration + 0.02:
            return c, f"segment outside the recording ({offset + duration:.2f} s > {info.duration:.2f} s)"
        if duration > max_duration:
            return c, f"too long ({duration:.1f} s > {max_duration:g} s)"
        entry = {"id": c.id, "audio_filepath": str(Path(c.audio).resolve()), "duration": round(duration, 4),
                 "text": " ".join(c.text.split()), "sampling_rate": info.sampling_rate}
        if c.offset is not None:
            entry["offset"] = round(offset, 4)
        if c.speaker is not None:
            entry["speaker"] = c.speaker
        entry.update(c.extra)
        return c, entry

    checked = parallel_map(check, list(candidates), jobs, f"{corpus}: checking audio")
    by_split: dict[str, list[dict]] = {s: [] for s in splits}
    seen: set[str] = set()
    for c, res in checked:
        if isinstance(res, str):
            rej.add(c.split, c.id, c.audio, res)
        elif c.id in seen:
            rej.add(c.split, c.id, c.audio, "duplicate id (an earlier item has it)")
        else:
            seen.add(c.id)
            by_split.setdefault(c.split, []).append(res)
    files = []
    for split, entries in by_split.items():
        name = manifest_name(split)
        write_manifest(out / name, entries)
        files.append(name)
    for name, lines in (text_files or {}).items():
        n = write_lines(out / name, lines)
        files.append(name)
        extra = {**(extra or {}), f"{name} lines": n}
    rej.write(out / "rejected.tsv")
    files.append("rejected.tsv")
    result = Result(
        corpus, str(out), {s: len(e) for s, e in by_split.items()},
        {s: round(sum(x["duration"] for x in e) / 3600, 4) for s, e in by_split.items()},
        dict(rej.counts()), files, extra or {},
    )
    mark_done(result, key)
    return result


def write_text_corpus(corpus: str, out: str | os.PathLike, files: dict[str, Callable[[], Iterable[str]]],
                      key: dict[str, Any], count: Callable[[str], int] | None = None) -> Result:
    """Write LM text files (name -> producer of lines) atomically, with token counts in the result."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts, extra = {}, {}
    for name, produce in progress(list(files.items()), len(files), f"{corpus}: writing", "file"):
        n_lines = write_lines(out / name, produce())
        counts[name] = n_lines
        if count is not None:
            extra[f"{name} tokens"] = count(str(out / name))
    Rejections().write(out / "rejected.tsv")
    result = Result(corpus, str(out), counts, {}, {}, [*files, "rejected.tsv"], extra, unit="lines")
    mark_done(result, key)
    return result


def copy_bytes(src: str | os.PathLike, dest: str | os.PathLike, start: int = 0, length: int | None = None,
               suffix: bytes = b"") -> int:
    """Copy ``length`` bytes of ``src`` from ``start`` (then ``suffix``) to ``dest`` atomically."""
    n = 0
    with open(src, "rb") as fi, atomic_open(dest, "wb") as fo:
        fi.seek(start)
        left = length
        while left is None or left > 0:
            chunk = fi.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            fo.write(chunk)
            n += len(chunk)
            if left is not None:
                left -= len(chunk)
        fo.write(suffix)
    return n


def download_file(url: str, dest_dir: str | os.PathLike, md5: str | None = None, force: bool = False) -> Path:
    """Fetch ``url`` into ``dest_dir`` (skipped when already there), atomically, with a progress bar."""
    from tqdm import tqdm

    dest = Path(dest_dir) / url.rstrip("/").split("/")[-1]
    if dest.is_file() and not force:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, atomic_open(dest, "wb") as f:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, file=sys.stderr) as bar:
                while chunk := resp.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except OSError as err:
        raise UserError(f"could not download {url} ({err}); fetch it by hand into {dest_dir}") from None
    if md5 is not None:
        digest = hashlib.md5(dest.read_bytes()).hexdigest()
        if digest != md5:
            dest.unlink()
            raise UserError(f"{url}: checksum mismatch ({digest} != {md5}); the download was corrupt, retry")
    return dest


def extract(archive: str | os.PathLike, dest_dir: str | os.PathLike, force: bool = False) -> Path:
    """Unpack a .tar(.gz/.bz2) or .zip into ``dest_dir`` once (a ``.<name>.done`` marker records it)."""
    import tarfile
    import zipfile

    archive, dest = Path(archive), Path(dest_dir)
    marker = dest / f".{archive.name}.done"
    if marker.is_file() and not force:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)
    else:
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    marker.write_text("done\n")
    return dest
