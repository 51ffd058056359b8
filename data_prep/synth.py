"""The embedded default corpus: many espeak-ng voices reading varied sentences, offline, 16 kHz FLAC.

Sentences come from ``--src`` (a text file, one per line) or a built-in generator. Every utterance
gets a voice (language variant + voice variant), a speaking rate and a pitch drawn from a generator
seeded by ``--seed`` and the utterance index, so the corpus is identical on every machine. Splits are
by utterance (dev/test sentences are never in train or the LM text). ``lm_text.txt`` holds further
generated sentences for the language model.
"""

from __future__ import annotations

import argparse
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from data_prep.common import (
    Candidate,
    Result,
    already_done,
    default_jobs,
    options_key,
    parallel_map,
    progress,
    write_corpus,
)
from toolkit.data.manifest import Rejections
from toolkit.data.text import normalize_text, read_lines
from toolkit.errors import UserError

HELP = "synthesise a multi-voice spoken corpus offline with espeak-ng (the embedded default)"
SAMPLING_RATE = 16000
LANGS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
            "klatt3", "croak", "whisper")

_WORDS = {
    "name": "anna ben carla david emma frank grace henry iris jack laura martin nora oscar paula ruth sam tom",
    "adj": "red green blue small large old young quiet loud bright dark warm cold heavy light quick slow happy "
           "tired clever empty busy",
    "noun": "dog cat bird horse river garden window table letter train street house doctor teacher farmer "
            "kitchen market bottle mountain ticket picture apple basket",
    "nouns": "dogs cats birds horses rivers gardens windows tables letters trains streets houses doctors "
             "teachers farmers bottles tickets pictures apples baskets",
    "verb_past": "saw found opened painted carried cleaned watched followed moved dropped bought sold "
                 "visited counted washed closed",
    "verb": "see find open paint carry clean watch follow move drop buy sell visit count wash close",
    "place": "park station village city kitchen library school forest harbour bridge office shop",
    "prep": "near behind under beside inside across",
    "time": "today yesterday tomorrow tonight early late",
    "num": "two three four five six seven eight nine ten eleven twelve twenty",
}
_TEMPLATES = (
    "the {adj} {noun} {verb_past} the {noun} {prep} the {place}",
    "{name} {verb_past} a {adj} {noun} {time}",
    "did {name} {verb} the {noun} {prep} the {place}",
    "{num} {adj} {nouns} were {prep} the {place}",
    "{name} and {name} {verb_past} {num} {nouns}",
    "please {verb} the {adj} {noun} before {name} comes back",
    "the {noun} in the {place} was {adj} {time}",
    "why did the {noun} {verb} the {adj} {noun}",
    "{name} said the {nouns} {prep} the {place} are {adj}",
    "we {verb_past} the {noun} and the {noun} {time}",
)


def generate_sentences(n: int, seed: int) -> list[str]:
    """``n`` distinct sentences from the built-in grammar (deterministic by ``seed``)."""
    rng = random.Random(seed)
    words = {k: v.split() for k, v in _WORDS.items()}
    out, seen = [], set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise UserError(f"the built-in grammar cannot make {n} distinct sentences; give --src text instead")
        tmpl = rng.choice(_TEMPLATES)
        s = " ".join(rng.choice(words[w[1:-1]]) if w.startswith("{") else w for w in tmpl.split())
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def speaker_for(seed: int, index: int) -> tuple[str, int, int]:
    """(voice, rate wpm, pitch) for utterance ``index``: a function of ``(seed, index)`` only."""
    rng = random.Random(f"{seed}:{index}")
    lang, variant = rng.choice(LANGS), rng.choice(VARIANTS)
    return (f"{lang}+{variant}" if variant else lang), rng.randint(130, 210), rng.randint(25, 75)


BLOCK = 100  # utterances per worker process


def _speak_block(jobs: list[tuple[str, str, str, int, int, int]]) -> list:
    """Speak a block of consecutive utterances (always whole: see ``espeak.speak_fresh``)."""
    from data_prep.espeak import speak_fresh

    if all(os.path.isfile(j[0]) and os.path.getsize(j[0]) > 0 for j in jobs):
        return [None] * len(jobs)
    return speak_fresh([j[1:] for j in jobs])


def _save(item: tuple[str, object]) -> str | None:
    """Resample one utterance to 16 kHz and write it as FLAC; None or the reason it failed."""
    import soundfile as sf
    import torch

    from data_prep.espeak import Espeak
    from toolkit.data.audio import resample
    from toolkit.data.io import atomic_open

    path, pcm = item
    if pcm is None:  # the block was already on disk
        return None
    if pcm.size == 0:
        return "synthesis produced no audio"
    wave = resample(torch.from_numpy(pcm.astype("float32") / 32768.0), Espeak.SAMPLING_RATE, SAMPLING_RATE)
    with atomic_open(path, "wb") as f:
        sf.write(f, wave.clamp(-1, 1).numpy(), SAMPLING_RATE, format="FLAC", subtype="PCM_16")
    return None


def prepare(
    src: str | os.PathLike | None,
    out: str | os.PathLike,
    num_utts: int = 1200,
    dev_size: int = 100,
    test_size: int = 100,
    lm_sentences: int = 5000,
    seed: int = 0,
    max_duration: float = 60.0,
    jobs: int | None = None,
    force: bool = False,
) -> Result:
    """Synthesise ``num_utts`` utterances into ``<out>/wavs/`` and write train/dev/test manifests."""
    if num_utts <= dev_size + test_size or min(dev_size, test_size) < 0:
        raise UserError(f"--num-utts {num_utts} must exceed --dev-size {dev_size} + --test-size {test_size}")
    if src is not None:
        if not Path(src).is_file():
            raise UserError(f"{src} not found: --src is a text file of sentences, one per line (or leave it out)")
        lines, _ = read_lines(src)
        pool = list(dict.fromkeys(t for t in (normalize_text(x, True, True) for x in lines) if t))
        if len(pool) < num_utts:
            raise UserError(f"{src} has {len(pool)} distinct sentences, fewer than --num-utts {num_utts}")
        rng = random.Random(seed)
        rng.shuffle(pool)
        lm_pool = pool[num_utts:]
    else:
        pool = generate_sentences(num_utts + lm_sentences, seed)
        lm_pool = pool[num_utts:]
    key = options_key("synth", src or "builtin", {"num_utts": num_utts, "dev": dev_size, "test": test_size,
                                                  "lm": lm_sentences, "seed": seed, "max_duration": max_duration})
    if done := already_done(out, key, force):
        return done
    wavs = Path(out) / "wavs"
    wavs.mkdir(parents=True, exist_ok=True)
    jobs_, cands = [], []
    n_train = num_utts - dev_size - test_size
    for i, text in enumerate(pool[:num_utts]):
        uid = f"synth{seed}-{i:06d}"
        voice, rate, pitch = speaker_for(seed, i)
        path = wavs / f"{uid}.flac"
        if force and path.exists():
            path.unlink()
        jobs_.append((str(path), text, voice, rate, pitch, seed * 1_000_003 + i))
        split = "train" if i < n_train else "dev" if i < n_train + dev_size else "test"
        cands.append(Candidate(split, uid, str(path), text, speaker=voice, extra={"rate": rate, "pitch": pitch}))
    workers = jobs or default_jobs()
    blocks = [jobs_[b : b + BLOCK] for b in range(0, len(jobs_), BLOCK)]
    # a fresh process per block, whatever --jobs is: the audio must not depend on it
    with ThreadPoolExecutor(min(workers, len(blocks))) as ex:
        done = progress(ex.map(_speak_block, blocks), len(blocks), f"synth: speaking ({BLOCK} utts each)", "block")
        pcm = [x for block in done for x in block]
    reasons = parallel_map(_save, [(j[0], x) for j, x in zip(jobs_, pcm, strict=True)], workers, "synth: writing")
    for c, why in zip(cands, reasons, strict=True):
        c.problem = why
    return write_corpus("synth", out, cands, key, ("train", "dev", "test"), max_duration, workers, Rejections(),
                        {"lm_text.txt": lm_pool})


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-utts", type=int, default=1200, help="utterances to synthesise")
    parser.add_argument("--dev-size", type=int, default=100, help="of which dev")
    parser.add_argument("--test-size", type=int, default=100, help="of which test")
    parser.add_argument("--lm-sentences", type=int, default=5000,
                        help="further sentences for lm_text.txt (default: 5000; with --src: the unused lines)")
    parser.add_argument("--seed", type=int, default=0, help="the corpus is a function of the seed")


def from_args(args: argparse.Namespace) -> Result:
    return prepare(args.src, args.out, args.num_utts, args.dev_size, args.test_size, args.lm_sentences, args.seed,
                   args.max_duration, args.jobs, args.force)
