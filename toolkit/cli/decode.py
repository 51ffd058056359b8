"""``recur decode``: transcribe audio files, folders or manifests with a trained CTC model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMAND = "decode"
# n-best rescoring options: None on the command line means "not given" (refused without --rescore-lm)
RESCORING_DEFAULTS = {"rescore_weight": 0.5, "rescore_word_score": 0.0, "nbest": 100}

HELP = "transcribe audio (files, folders, manifests) with a trained CTC model; scores sets that have references"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", help="audio files (any rate, mono or stereo), folders, or .jsonl manifests"
    )
    parser.add_argument(
        "--model",
        required=True,
        action="append",
        help="experiment folder (exp/<corpus>/<model>) or a .ckpt file; give it again to decode with an "
        "ensemble (the models' frame posteriors fused; same tokenizer and frame rate)",
    )
    parser.add_argument(
        "--fusion",
        choices=("prob", "logprob"),
        default="prob",
        help="how an ensemble's posteriors are fused: mean probability (default) or mean log-probability",
    )
    parser.add_argument(
        "--exp-dir",
        help="folder for the scores and metrics.json (default: the --model folder; required to record "
        "an ensemble's scores with --set)",
    )
    parser.add_argument("--out", help="write 'id<TAB>transcript' lines here instead of stdout")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="audio per forward pass (default 60)")
    parser.add_argument("--beam", type=int, default=0, help="beam size; 0 = greedy (default)")
    parser.add_argument(
        "--lm",
        help="language model for beam search: a KenLM file (.arpa/.bin), or a recur LM (experiment folder or .ckpt)",
    )
    parser.add_argument("--lexicon", help="lexicon for --lm (default: the LM's words, spelled in the model's tokens)")
    parser.add_argument("--lm-weight", type=float, default=0.5, help="LM weight in beam search (default 0.5)")
    parser.add_argument(
        "--beam-tokens", type=int, default=8, help="tokens considered per frame in beam search (default 8)"
    )
    parser.add_argument("--word-score", type=float, default=0.0, help="word insertion score (default 0)")
    parser.add_argument(
        "--blank-penalty",
        type=float,
        default=0.0,
        help="lower the blank's log-probability by this much on every frame before decoding (greedy or beam); "
        "a model too sure of the blank deletes tokens (default 0)",
    )
    parser.add_argument(
        "--rescore-lm",
        help="a recur LM (experiment folder or .ckpt) that re-ranks the beam search's n-best list: "
        "first-pass score + --rescore-weight x the LM's sentence log-probability",
    )
    d = RESCORING_DEFAULTS
    parser.add_argument(
        "--rescore-weight", type=float, help=f"weight of --rescore-lm's log-probability (default {d['rescore_weight']})"
    )
    parser.add_argument(
        "--rescore-word-score",
        type=float,
        help=f"score per word added in rescoring (default {d['rescore_word_score']:g})",
    )
    parser.add_argument("--nbest", type=int, help=f"hypotheses kept for --rescore-lm (default {d['nbest']})")
    parser.add_argument(
        "--set",
        dest="set_name",
        help="name of the decoded set; with references, scores go to <model>/decode/<set>/ and "
        "the figures into the experiment's metrics.json (without --set: scored into "
        "<model>/decode/adhoc/, not recorded)",
    )


def _arpa_words(path: Path) -> list[str]:
    words, in_unigrams = [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif line.startswith("\\"):
                if in_unigrams:
                    break
            elif in_unigrams and line:
                w = line.split()[1]
                if not w.startswith("<"):
                    words.append(w)
    return words


def _spelling(tokenizer, symbols: list[str]):
    """word -> the model's tokens for it (characters + word separator, or sentencepiece pieces),
    or None when the model cannot spell it."""
    from toolkit.decode.beam import char_spelling

    known = set(symbols[1:])
    if tokenizer.kind == "char":
        separator = " " in known
        return lambda w: char_spelling(w, separator) if set(w) <= known else None
    if tokenizer.kind == "word":
        return lambda w: [w] if w in known else None

    def pieces(word: str) -> list[str] | None:
        p = tokenizer.pieces(word)
        return p if p and all(x in known for x in p) else None

    return pieces


def _lexicon(args: argparse.Namespace, words, name: str, spell, exp_dir: Path | None) -> Path:
    from toolkit.decode.beam import write_lexicon

    if args.lexicon:
        return Path(args.lexicon)
    target = (exp_dir or Path(args.lm).parent) / "decode" / f"lexicon.{name}.txt"
    return write_lexicon(words, target, spell)


def _build_decoder(args: argparse.Namespace, model, exp_dir: Path | None):
    from toolkit.decode.beam import BeamConfig, CTCBeamSearch
    from toolkit.errors import UserError

    if args.beam <= 0:
        if args.lm:
            raise UserError("--lm needs beam search: add --beam N (e.g. --beam 16)")
        return None
    symbols = getattr(model.tokenizer, "symbols", None)
    if symbols is None:
        raise UserError(f"beam search over {model.tokenizer.kind} tokens is not supported; decode greedily (no --beam)")
    spell = _spelling(model.tokenizer, symbols)
    word_sep = None if model.tokenizer.kind == "word" else " "
    config = BeamConfig(
        args.beam,
        args.beam_tokens,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        nbest=args.nbest if args.rescore_lm else 1,
    )
    if args.lm and (Path(args.lm).is_dir() or Path(args.lm).suffix == ".ckpt"):
        from toolkit.tasks.lm_eval import load_lm

        lm = load_lm(args.lm, args.device)
        tok = lm.tokenizer
        index = getattr(tok, "index", None)
        if index is None:
            raise UserError(f"--lm {args.lm}: a {tok.kind} LM cannot be fused; use a word, char or sentencepiece LM")
        fusion = dict(lm=lm, lm_vocab=index, lm_unk_id=tok.unk_id, lm_end_id=tok.eos_id, config=config)
        if tok.kind == "word":
            # a word LM scores whole words: the decoder needs a lexicon spelling them in the model's tokens
            words = [w for w in tok.symbols[3:] if w != "<unk>"]
            lexicon = _lexicon(args, words, Path(args.lm).stem, spell, exp_dir)
            return CTCBeamSearch(symbols, word_sep=word_sep, lexicon=lexicon, **fusion)
        missing = [s for s in symbols[1:] if s not in index and s != "<unk>"]
        if missing:
            raise UserError(
                f"--lm {args.lm}: the LM has no symbol for {missing[:5]}; fuse an LM over the model's own "
                f"{model.tokenizer.kind} tokens (same tokenizer), or a word LM"
            )
        return CTCBeamSearch(symbols, word_sep=word_sep, **fusion)
    lexicon = args.lexicon
    if args.lm and Path(args.lm).suffix == ".arpa" and lexicon is None:
        lexicon = _lexicon(args, _arpa_words(Path(args.lm)), Path(args.lm).stem, spell, exp_dir)
    return CTCBeamSearch(symbols, word_sep=word_sep, lexicon=lexicon, lm=args.lm, config=config)


def _check_rescoring(args: argparse.Namespace) -> None:
    """Fill the rescoring defaults; refuse rescoring options without --rescore-lm (they would do nothing)."""
    from toolkit.errors import UserError

    given = [key for key in RESCORING_DEFAULTS if getattr(args, key) is not None]
    if given and not args.rescore_lm:
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        raise UserError(f"{flags}: options of n-best rescoring; add --rescore-lm LM, or leave them out")
    for key, value in RESCORING_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def _rescorer(args: argparse.Namespace, search):
    """The beam search wrapped in n-best rescoring by --rescore-lm."""
    from toolkit.decode.rescore import NBestRescorer
    from toolkit.errors import UserError
    from toolkit.tasks.lm_eval import load_lm

    if search is None:
        raise UserError("--rescore-lm re-ranks a beam search's n-best list: add --beam N (e.g. --beam 500)")
    if args.nbest < 1:
        raise UserError(f"--nbest must be at least 1, not {args.nbest}")
    lm = load_lm(args.rescore_lm, args.device)
    tok = lm.tokenizer
    return NBestRescorer(search, lm, tok.encode, tok.eos_id, args.rescore_weight, args.rescore_word_score)


def run(args: argparse.Namespace) -> int:
    from toolkit.data.io import write_text
    from toolkit.decode.scoring import write_scoring
    from toolkit.decode.transcribe import expand_inputs, load_asr_model, transcribe, update_metrics
    from toolkit.errors import UserError

    if len(args.model) > 1 and args.set_name and not args.exp_dir:
        raise UserError("--set with several --model: name the folder for the ensemble's scores with --exp-dir")
    _check_rescoring(args)
    models = [load_asr_model(m, args.device) for m in args.model]
    if len(models) == 1:
        model = models[0]
    else:
        from toolkit.decode.ensemble import CTCEnsemble

        model = CTCEnsemble(models, args.fusion)
    exp_dir = Path(args.exp_dir) if args.exp_dir else None
    if exp_dir is not None:
        exp_dir.mkdir(parents=True, exist_ok=True)
    if exp_dir is None and len(models) == 1 and Path(args.model[0]).is_dir():
        exp_dir = Path(args.model[0])
    decoder = _build_decoder(args, model, exp_dir)
    if args.rescore_lm:
        decoder = _rescorer(args, decoder)
    utterances = expand_inputs(args.inputs)
    bad: list[str] = []

    def report(utt, message: str) -> None:
        bad.append(utt.id)
        print(f"recur decode: skipped {message}", file=sys.stderr)

    results, timing = transcribe(
        model, utterances, decoder, args.batch_seconds, report, blank_penalty=args.blank_penalty
    )
    lines = "".join(f"{r.id}\t{r.text}\n" for r in results)
    if args.out:
        write_text(args.out, lines)
    else:
        sys.stdout.write(lines)
    print(
        f"recur decode: {len(results)} decoded, {len(bad)} skipped; {timing['audio_s']:.1f} s of audio in "
        f"{timing['elapsed_s']:.1f} s, real-time factor {timing['rtf']:.3f}",
        file=sys.stderr,
    )
    # references in the form the model is taught to write (the tokenizer's lowercasing, punctuation)
    norm = model.tokenizer.normalize
    refs = {r.id: norm(r.ref) for r in results if r.ref is not None}
    if refs:
        # an ad-hoc decode (no --set) is scored and its files written, but the experiment's
        # metrics.json, which its results table is made from, only takes named sets; its files go
        # under decode/adhoc/ so that they never replace those of a recorded set of the same name
        manifests = [Path(i).stem for i in args.inputs if str(i).endswith(".jsonl")]
        name = args.set_name or (manifests[0] if len(manifests) == 1 else "set")
        out_dir = (exp_dir / "decode") if exp_dir else Path(args.out or "./x").parent / "decode"
        if not args.set_name:
            out_dir = out_dir / "adhoc"
        tag = name + (f"_beam{args.beam}" if args.beam else "")
        if args.lm:
            tag += "_kenlm" if Path(args.lm).suffix in (".arpa", ".bin") else "_rnnlm"
        if args.rescore_lm:
            tag += "_rescored"
        if args.blank_penalty:
            tag += f"_bp{args.blank_penalty:g}"
        # utterances that could not be read still count: as deletions of their whole reference
        refs.update({u.id: norm(u.ref) for u in utterances if u.id in bad and u.ref is not None})
        figures = write_scoring(refs, {r.id: r.text for r in results}, out_dir / tag, name=tag)
        print(
            f"recur decode: {tag}: WER {100 * figures['wer']:.2f}%  CER {100 * figures['cer']:.2f}%  ({out_dir / tag})"
        )
        if exp_dir is not None and args.set_name:
            update_metrics(
                exp_dir, {f"{tag}/wer": figures["wer"], f"{tag}/cer": figures["cer"], f"{tag}/rtf": timing["rtf"]}
            )
    return 0 if results or not utterances else 1
