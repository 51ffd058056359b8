"""TIMIT (LDC93S1), LDC layout: ``TRAIN|TEST/DR1-8/<speaker>/<utt>.WAV`` (NIST SPHERE) with ``.PHN``,
``.WRD`` and ``.TXT`` beside each; upper or lower case names both work.

The usual recipe: SA sentences left out; train = TRAIN, test = the 24-speaker core test set, dev =
the 50 standard development speakers from the rest of TEST. Phones are folded 61 -> 39 (Lee & Hon
1989: closures and pauses to ``sil``, ``q`` dropped). ``<split>.jsonl`` has the phone sequence as
text; ``<split>_words.jsonl`` the word transcript. Not downloadable: TIMIT is licensed by the LDC.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from data_prep.common import (
    DEFAULT_MAX_DURATION,
    Candidate,
    Result,
    already_done,
    default_jobs,
    mark_done,
    options_key,
    require_dir,
    write_corpus,
)
from toolkit.data.manifest import Rejections, write_manifest
from toolkit.data.text import read_lines
from toolkit.errors import UserError

HELP = "TIMIT (LDC layout, SPHERE .WAV + .PHN/.WRD): 61->39 phones and words; core test, 50-speaker dev"

CORE_TEST = frozenset("""MDAB0 MWBT0 FELC0 MTAS1 MWEW0 FPAS0 MJMP0 MLNT0 FPKT0 MLLL0 MTLS0 FJLM0
MBPM0 MKLT0 FNLP0 MCMJ0 MJDH0 FMGD0 MGRT0 MNJM0 FDHC0 MJLN0 MPAM0 FMLD0""".split())
DEV = frozenset("""FAKS0 FDAC1 FJEM0 MGWT0 MJAR0 MMDB1 MMDM2 MPDF0 FCMH0 FKMS0 MBDG0 MBWM0 MCSH0
FADG0 FDMS0 FEDW0 MGJF0 MGLB0 MRTK0 MTAA0 MTDT0 MTHC0 MWJG0 FNMR0 FREW0 FSEM0 MBNS0 MMJR0 MDLS0 MDLF0
MDVC0 MERS0 FMAH0 FDRW0 MRCS0 MRJM4 FCAL1 MMWH0 FJSJ0 MAJC0 MJSW0 MREB0 FGJD0 FJMG0 MROA0 MTEB0 MJFC0
MRJR0 FMML0 MRWS1""".split())

# 61 TIMIT phones -> 39 (None: deleted)
FOLD_39: dict[str, str | None] = {
    **{p: p for p in "aa ae ah aw ay b ch d dh dx eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th uh uw v "
       "w y z".split()},
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l", "em": "m", "en": "n",
    "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    **{p: "sil" for p in "pcl tcl kcl bcl dcl gcl h# pau epi".split()},
    "q": None,
}


def fold_phones(phones: list[str]) -> list[str]:
    """Map TIMIT's 61 phones to the 39 used for scoring; raises KeyError on an unknown phone."""
    return [q for q in (FOLD_39[p] for p in phones) if q is not None]


def _labels(path: Path, col: int = 2) -> list[str]:
    lines, bad = read_lines(path)
    if bad:
        raise ValueError(f"{path.name} not UTF-8")
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= col + 1:
            out.append(parts[col].lower())
    return out


def _sibling(wav: Path, ext: str) -> Path:
    for e in (ext.upper(), ext.lower()):
        if wav.with_suffix(e).is_file():
            return wav.with_suffix(e)
    return wav.with_suffix(ext.upper())


def candidates(root: Path, rej: Rejections) -> list[Candidate]:
    cands = []
    for part in sorted(d for d in root.iterdir() if d.is_dir() and d.name.upper() in ("TRAIN", "TEST")):
        for wav in sorted(p for p in part.glob("*/*/*") if p.suffix.upper() == ".WAV"):
            spk, utt = wav.parent.name.upper(), wav.stem.upper()
            if utt.startswith("SA"):
                continue
            if part.name.upper() == "TRAIN":
                split = "train"
            elif spk in CORE_TEST:
                split = "test"
            elif spk in DEV:
                split = "dev"
            else:
                continue
            uid = f"{spk}_{utt}"
            try:
                phones = fold_phones(_labels(_sibling(wav, ".PHN")))
                words = _labels(_sibling(wav, ".WRD"))
            except FileNotFoundError as err:
                why = f"missing label file ({Path(err.filename).name})"
                cands.append(Candidate(split, uid, str(wav), None, problem=why))
                continue
            except KeyError as err:
                cands.append(Candidate(split, uid, str(wav), None, problem=f"unknown phone ({err.args[0]})"))
                continue
            except ValueError as err:
                cands.append(Candidate(split, uid, str(wav), None, problem=f"not UTF-8 ({err})"))
                continue
            cands.append(Candidate(split, uid, str(wav), " ".join(phones), speaker=spk,
                                   extra={"words": " ".join(words)}))
    return cands


def prepare(src: str | os.PathLike, out: str | os.PathLike, max_duration: float = DEFAULT_MAX_DURATION,
            jobs: int | None = None, force: bool = False) -> Result:
    """Write ``{train,dev,test}.jsonl`` (39 phones) and ``{train,dev,test}_words.jsonl`` (words)."""
    src = require_dir(src, "TIMIT", "TIMIT is licensed by the LDC (LDC93S1); point --src at your copy")
    root = src / "TIMIT" if (src / "TIMIT").is_dir() else src / "timit" if (src / "timit").is_dir() else src
    if not any(d.name.upper() in ("TRAIN", "TEST") for d in root.iterdir() if d.is_dir()):
        raise UserError(f"no TRAIN/ or TEST/ folder under {root}: --src must be the TIMIT folder of the LDC disc")
    key = options_key("timit", src, {"max_duration": max_duration})
    if done := already_done(out, key, force):
        return done
    rej = Rejections()
    result = write_corpus("timit", out, candidates(root, rej), key, ("train", "dev", "test"), max_duration,
                          jobs or default_jobs(), rej)
    from toolkit.data.manifest import read_manifest

    for split in ("train", "dev", "test"):
        entries = read_manifest(Path(out) / f"{split}.jsonl", resolve_paths=False)
        words = [{**{k: v for k, v in e.items() if k != "words"}, "text": e["words"], "phones": e["text"]}
                 for e in entries if e.get("words")]
        write_manifest(Path(out) / f"{split}_words.jsonl", words)
        result.files.append(f"{split}_words.jsonl")
    mark_done(result, key)  # again, now that the word manifests exist
    return result


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def from_args(args: argparse.Namespace) -> Result:
    return prepare(args.src, args.out, args.max_duration, args.jobs, args.force)
