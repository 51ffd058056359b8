"""Scoring a decoded set: WER/CER with jiwer, and the files of a decode folder.

``recogs.txt``  one ``id  ref=...`` / ``id  hyp=...`` pair per utterance;
``errs.txt``    the summary line, per-utterance alignments ``(ref->hyp)``, then substitution,
                deletion and insertion tables with counts (as icefall / sclite print them);
``wer_summary.txt``  the figures, one per line.
Empty references or hypotheses are scored (all insertions / all deletions), never a crash.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import jiwer

from toolkit.data.io import write_text


@dataclass
class ErrorCounts:
    ref_words: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0
    ref_chars: int = 0
    char_errors: int = 0
    utterances: int = 0
    sentence_errors: int = 0

    @property
    def wer(self) -> float:
        return (self.sub + self.dele + self.ins) / max(self.ref_words, 1)

    @property
    def cer(self) -> float:
        return self.char_errors / max(self.ref_chars, 1)


def _words(text: str) -> list[str]:
    return text.split()


def align_words(ref: str, hyp: str) -> list[tuple[str, str | None, str | None]]:
    """Word alignment as (op, ref_word, hyp_word) with op in equal/substitute/delete/insert."""
    r, h = _words(ref), _words(hyp)
    if not r or not h:
        return [("delete", w, None) for w in r] + [("insert", None, w) for w in h]
    out = jiwer.process_words(" ".join(r), " ".join(h))
    pairs = []
    for chunk in out.alignments[0]:
        rs, hs = r[chunk.ref_start_idx : chunk.ref_end_idx], h[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type in ("equal", "substitute"):
            pairs += [(chunk.type, a, b) for a, b in zip(rs, hs, strict=True)]
        elif chunk.type == "delete":
            pairs += [("delete", a, None) for a in rs]
        else:
            pairs += [("insert", None, b) for b in hs]
    return pairs


def char_errors(ref: str, hyp: str) -> int:
    """Character edit distance, spaces counted as characters (after collapsing runs of spaces)."""
    r, h = " ".join(ref.split()), " ".join(hyp.split())
    if not r or not h:
        return max(len(r), len(h))
    o = jiwer.process_characters(r, h)
    return o.substitutions + o.deletions + o.insertions


def score(refs: Mapping[str, str], hyps: Mapping[str, str]) -> tuple[ErrorCounts, dict[str, list]]:
    """Corpus-level counts over the utterances in ``refs`` (a missing hypothesis counts as empty)."""
    counts = ErrorCounts()
    alignments = {}
    for uid, ref in refs.items():
        hyp = hyps.get(uid, "")
        pairs = align_words(ref, hyp)
        alignments[uid] = pairs
        ops = Counter(op for op, _, _ in pairs)
        counts.ref_words += len(_words(ref))
        counts.sub += ops["substitute"]
        counts.dele += ops["delete"]
        counts.ins += ops["insert"]
        counts.ref_chars += len(" ".join(ref.split()))
        counts.char_errors += char_errors(ref, hyp)
        counts.utterances += 1
        counts.sentence_errors += int(ops["substitute"] + ops["delete"] + ops["insert"] > 0)
    return counts, alignments


def write_scoring(
    refs: Mapping[str, str], hyps: Mapping[str, str], out_dir: str | os.PathLike, name: str = ""
) -> dict[str, float]:
    """Score and write recogs.txt, errs.txt and wer_summary.txt into ``out_dir``; returns the figures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts, alignments = score(refs, hyps)
    errors = counts.sub + counts.dele + counts.ins
    summary = (
        f"%WER {100 * counts.wer:.2f}% [ {errors} / {counts.ref_words}, {counts.ins} ins, "
        f"{counts.dele} del, {counts.sub} sub ]"
    )
    recogs = []
    for uid in refs:
        recogs += [f"{uid}\tref={refs[uid]}", f"{uid}\thyp={hyps.get(uid, '')}"]
    write_text(out / "recogs.txt", "\n".join(recogs) + "\n")

    subs, dels, ins = Counter(), Counter(), Counter()
    lines = [
        summary,
        f"%SER {100 * counts.sentence_errors / max(counts.utterances, 1):.2f}% "
        f"[ {counts.sentence_errors} / {counts.utterances} ]",
        f"%CER {100 * counts.cer:.2f}% [ {counts.char_errors} / {counts.ref_chars} ]",
        "",
        "PER-UTT DETAILS: corr or (ref->hyp)",
    ]
    for uid, pairs in alignments.items():
        shown = []
        for op, r, h in pairs:
            if op == "equal":
                shown.append(r)
            else:
                shown.append(f"({r or '*'}->{h or '*'})")
                if op == "substitute":
                    subs[(r, h)] += 1
                elif op == "delete":
                    dels[r] += 1
                else:
                    ins[h] += 1
        lines.append(f"{uid}:\t{' '.join(shown)}")
    lines += ["", "SUBSTITUTIONS: count ref -> hyp"]
    lines += [f"{n}   {r} -> {h}" for (r, h), n in subs.most_common()]
    lines += ["", "DELETIONS: count ref"] + [f"{n}   {w}" for w, n in dels.most_common()]
    lines += ["", "INSERTIONS: count hyp"] + [f"{n}   {w}" for w, n in ins.most_common()]
    write_text(out / "errs.txt", "\n".join(lines) + "\n")

    figures = {"wer": counts.wer, "cer": counts.cer, **{k: v for k, v in asdict(counts).items()}}
    write_text(
        out / "wer_summary.txt",
        "\n".join([f"{name}\t{summary}".strip()] + [f"{k}\t{v}" for k, v in figures.items()]) + "\n",
    )
    return figures


def score_line(command: str, tag: str, figures: Mapping[str, float], out_dir: Path, printed: bool) -> str:
    """The line ``recur decode`` and ``recur stream`` print for a scored set (a checkpoint or an export
    folder); ``printed``: whether the transcripts went to the terminal or --out (if not, the line says which
    file holds them)."""
    where = f"{out_dir}" if printed else f"{out_dir}; transcripts in {out_dir / 'recogs.txt'}"
    return f"recur {command}: {tag}: WER {100 * figures['wer']:.2f}%  CER {100 * figures['cer']:.2f}%  ({where})"


def unscored_warning(command: str, set_name: str) -> str:
    """The warning for ``--set NAME`` when nothing decoded has a reference."""
    return (
        f"recur {command}: warning: --set {set_name}: nothing decoded has a reference, so nothing is scored "
        "(give a manifest, .txt files beside the audio, or --ref FILE)"
    )
