"""Phone transcripts and a pronunciation lexicon for prepared manifests, by espeak-ng's grapheme-to-phoneme
rules (no pronunciation dictionary from elsewhere).

``--src`` is a folder that ``recur prep`` wrote (``train.jsonl``, ``dev.jsonl``, ``test.jsonl``, any of
them, and optionally ``lm_text.txt``). Every word of those transcripts and of the LM text is looked up
once, in isolation, so a word always has the same phones; function words whose isolated form is
the strong one ("a" as the letter name) get their weak form. Written to ``--out``:

* ``<split>.jsonl``: the same utterances, ``text`` = their phones separated by spaces, ``words`` = the
  words (lowercased, punctuation removed, as a ``--lowercase --remove-punct`` tokenizer writes them);
* ``lexicon.txt``: ``word<TAB>phones`` for every word of the training transcripts and the LM text, the
  decoding vocabulary (``recur decode --lexicon``); dev and test words get phones but stay out of it;
* ``phones.txt``: the phone inventory, one line (with the manifests, the input of the phone tokenizer).

Decode the *word* manifests of ``--src`` with the lexicon to score words; the phone manifests score phones.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from data_prep.common import Result, already_done, mark_done, options_key, progress, require_dir
from toolkit.data.io import atomic_open, write_lines
from toolkit.data.manifest import Rejections, read_manifest, write_manifest
from toolkit.data.text import normalize_text, read_lines
from toolkit.errors import UserError

HELP = "phone transcripts + pronunciation lexicon of prepared manifests (espeak-ng G2P), for phone CTC models"
SPLITS = ("train", "dev", "test")
# isolated-word forms that are almost never what a reader says in running text
WEAK_FORMS = {"a": ["ə"]}


def words_of(text: str) -> list[str]:
    """Words as a lowercasing, punctuation-removing tokenizer writes them."""
    return normalize_text(text, lowercase=True, remove_punct=True).split()


def pronounce(words: list[str], voice: str = "en-us", desc: str = "phones: G2P") -> dict[str, list[str]]:
    """``word -> phones`` for each distinct word (espeak-ng, in this process); words espeak-ng gives no
    phones for are left out."""
    from data_prep.espeak import Espeak

    engine = Espeak()
    out: dict[str, list[str]] = {}
    for w in progress(sorted(set(words)), None, desc, "word"):
        phones = WEAK_FORMS.get(w) or engine.phonemes(w, voice)
        # a phone token must pass the tokenizer's normalisation unchanged: marks it would strip
        # (the syllabic stroke of "n̩") go here, so training targets and lexicon agree
        phones = [q for q in (normalize_text(p, True, True).replace(" ", "") for p in phones) if q]
        if phones:
            out[w] = phones
    return out


def prepare(src: str | os.PathLike, out: str | os.PathLike, voice: str = "en-us", force: bool = False) -> Result:
    src = require_dir(src, "prepared manifests", "run `recur prep CORPUS --out DIR` first and give that DIR")
    splits = [s for s in SPLITS if (src / f"{s}.jsonl").is_file()]
    if not splits:
        raise UserError(f"{src} has no train.jsonl, dev.jsonl or test.jsonl: give a folder `recur prep` wrote")
    key = options_key("phones", src, {"voice": voice, "weak": WEAK_FORMS})
    if done := already_done(out, key, force):
        return done
    manifests = {s: read_manifest(src / f"{s}.jsonl", resolve_paths=False) for s in splits}
    words = {s: [words_of(e["text"]) for e in entries] for s, entries in manifests.items()}
    # the decoding vocabulary: training transcripts and LM text only (no dev or test word leaks into it)
    vocab = [w for ws in words.get("train", []) for w in ws]
    lm_text = src / "lm_text.txt"
    if lm_text.is_file():
        vocab += [w for line in read_lines(lm_text)[0] for w in words_of(line)]
    held_out = [w for s in splits if s != "train" for ws in words[s] for w in ws]
    lexicon = pronounce(vocab + held_out, voice)
    decode_vocab = sorted(set(vocab) & set(lexicon))
    inventory = sorted({p for phones in lexicon.values() for p in phones})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rej = Rejections()
    counts, hours = {}, {}
    for split, entries in manifests.items():
        kept = []
        for e, ws in zip(entries, words[split], strict=True):
            missing = [w for w in ws if w not in lexicon]
            if not ws or missing:
                rej.add(split, e["id"], e["audio_filepath"], f"no phones for {missing[:3]}" if ws else "no words")
                continue
            kept.append({**e, "text": " ".join(p for w in ws for p in lexicon[w]), "words": " ".join(ws)})
        write_manifest(out / f"{split}.jsonl", kept)
        counts[split] = len(kept)
        hours[split] = sum(float(e.get("duration", 0.0)) for e in kept) / 3600
    with atomic_open(out / "lexicon.txt") as f:
        for w in decode_vocab:
            f.write(f"{w}\t{' '.join(lexicon[w])}\n")
    write_lines(out / "phones.txt", [" ".join(inventory)])
    rej.write(out / "rejected.tsv")
    result = Result("phones", str(out), counts, hours, dict(rej.counts()),
                    [f"{s}.jsonl" for s in splits] + ["lexicon.txt", "phones.txt", "rejected.tsv"],
                    {"lexicon words": len(decode_vocab), "phones": len(inventory)})  # fmt: skip
    mark_done(result, key)
    return result


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice whose pronunciations to use")


def from_args(args: argparse.Namespace) -> Result:
    return prepare(args.src, args.out, args.voice, args.force)

