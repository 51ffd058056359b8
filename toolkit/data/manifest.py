"""Manifests: JSON Lines, one utterance per line (NeMo-style, maps 1:1 onto a Lhotse cut).

Required keys: ``id``, ``audio_filepath``, ``duration`` (seconds), ``text``, ``sampling_rate``;
optional: ``offset`` (seconds into the file), ``speaker``, and any extra field a corpus needs.
A relative ``audio_filepath`` is resolved against the manifest's own folder.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from toolkit.data.io import atomic_open
from toolkit.errors import UserError

REQUIRED = ("id", "audio_filepath", "duration", "text", "sampling_rate")

Entry = dict[str, Any]


def entry_problem(entry: Any) -> str | None:
    """The reason ``entry`` is not a valid manifest line, or None when it is."""
    if not isinstance(entry, dict):
        return "not a JSON object"
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        return f"missing key(s) {', '.join(missing)}"
    if not isinstance(entry["id"], str) or not entry["id"] or any(c.isspace() for c in entry["id"]):
        return "id must be a non-empty string without whitespace"
    if not isinstance(entry["audio_filepath"], str) or not entry["audio_filepath"]:
        return "audio_filepath must be a non-empty string"
    dur = entry["duration"]
    if not isinstance(dur, (int, float)) or isinstance(dur, bool) or not math.isfinite(dur) or dur <= 0:
        return f"duration must be a positive number of seconds, got {dur!r}"
    if not isinstance(entry["text"], str):
        return "text must be a string"
    sr = entry["sampling_rate"]
    if not isinstance(sr, int) or isinstance(sr, bool) or sr <= 0:
        return f"sampling_rate must be a positive integer, got {sr!r}"
    off = entry.get("offset", 0.0)
    if not isinstance(off, (int, float)) or isinstance(off, bool) or not math.isfinite(off) or off < 0:
        return f"offset must be a non-negative number of seconds, got {off!r}"
    return None


def read_manifest(path: str | os.PathLike, resolve_paths: bool = True) -> list[Entry]:
    """Read and validate a manifest; raises UserError naming the file and line of the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest {path} not found: run `recur prep` first or pass the right path")
    entries: list[Entry] = []
    seen: set[str] = set()
    base = path.resolve().parent
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise UserError(f"{path}:{lineno}: not UTF-8; manifests must be UTF-8 JSON Lines") from None
            if not line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                msg = f"{path}:{lineno}: not valid JSON ({err.msg}); regenerate it with `recur prep`"
                raise UserError(msg) from None
            problem = entry_problem(entry)
            if problem:
                raise UserError(f"{path}:{lineno}: {problem}")
            if entry["id"] in seen:
                raise UserError(f"{path}:{lineno}: duplicate id {entry['id']!r}; ids must be unique")
            seen.add(entry["id"])
            if resolve_paths and not os.path.isabs(entry["audio_filepath"]):
                entry["audio_filepath"] = str(base / entry["audio_filepath"])
            entries.append(entry)
    return entries


def write_manifest(path: str | os.PathLike, entries: Iterable[Entry]) -> int:
    """Validate every entry, then write the manifest atomically; returns the number of lines."""
    entries = list(entries)
    seen: set[str] = set()
    for i, e in enumerate(entries):
        problem = entry_problem(e)
        if problem is None and e["id"] in seen:
            problem = f"duplicate id {e['id']!r}"
        if problem:
            raise ValueError(f"refusing to write {path}: entry {i} ({e.get('id', '?')}): {problem}")
        seen.add(e["id"])
    with atomic_open(path) as f:
        for e in entries:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    return len(entries)


def filter_manifest(
    entries: Iterable[Entry],
    min_duration: float = 0.0,
    max_duration: float = math.inf,
    min_text: int = 0,
    max_text: int = 10**9,
) -> tuple[list[Entry], list[tuple[Entry, str]]]:
    """Split entries into (kept, [(entry, reason)]) by duration (s) and text length (characters)."""
    kept, dropped = [], []
    for e in entries:
        d, n = float(e["duration"]), len(e["text"])
        if d < min_duration:
            dropped.append((e, f"too short ({d:.2f} s < {min_duration:g} s)"))
        elif d > max_duration:
            dropped.append((e, f"too long ({d:.2f} s > {max_duration:g} s)"))
        elif n < min_text:
            dropped.append((e, f"text too short ({n} < {min_text} characters)"))
        elif n > max_text:
            dropped.append((e, f"text too long ({n} > {max_text} characters)"))
        else:
            kept.append(e)
    return kept, dropped


def total_hours(entries: Iterable[Entry]) -> float:
    """Sum of durations in hours."""
    return sum(float(e["duration"]) for e in entries) / 3600.0


class Rejections:
    """Items left out, each with a one-line reason; written as ``rejected.tsv`` beside the manifest.

    ``reason`` is free text; its part before the first ``" ("`` or ``":"`` is the *kind* the summary
    counts (so "too long (4000 s > 60 s)" counts as "too long").
    """

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, split: str, item_id: str, source: str, reason: str) -> None:
        clean = " ".join(str(reason).split())
        self.rows.append((split, item_id, str(source), clean))

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def kind(reason: str) -> str:
        return reason.split(" (")[0].split(":")[0].strip()

    def counts(self, split: str | None = None) -> Counter:
        return Counter(self.kind(r[3]) for r in self.rows if split is None or r[0] == split)

    def write(self, path: str | os.PathLike) -> None:
        with atomic_open(path) as f:
            f.write("split\tid\tsource\treason\n")
            for row in self.rows:
                f.write("\t".join(c.replace("\t", " ") for c in row) + "\n")
