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
        "ensemble (the models' frame posteriors fused; same tokenizer and frame rate); or a folder written by "
        "recur export (decoded with onnxruntime, no PyTorch)",
    )
    parser.add_argument(
        "--fusion",
        choices=("prob", "logprob"),
        default="prob",
        help="how an ensemble's posteriors are fused: mean probability or mean log-probability",
    )
    parser.add_argument(
        "--exp-dir",
        help="folder for the scores and metrics.json (default: the --model folder; required to record "
        "an ensemble's scores with --set)",
    )
    parser.add_argument(
        "--ref",
        help="reference transcripts by utterance id (TSV 'id<TAB>text' or Kaldi 'text'); without it, manifests' "
        "texts and same-stem .txt files beside the audio are the references",
    )
    parser.add_argument("--out", help="write 'id<TAB>transcript' lines here instead of stdout")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-seconds", type=float, default=60.0, help="seconds of audio per forward pass")
    add_search_options(parser)
    parser.add_argument(
        "--rescore-lm",
        help="a recur LM (experiment folder or .ckpt) that re-ranks the beam search's n-best list: "
        "first-pass score + --rescore-weight x the LM's sentence log-probability",
    )
    d = RESCORING_DEFAULTS
    parser.add_argument(
        "--rescore-weight",
        type=float,
        help=f"weight of --rescore-lm's log-probability (default: {d['rescore_weight']})",
    )
    parser.add_argument(
        "--rescore-word-score",
        type=float,
        help=f"score per word added in rescoring (default: {d['rescore_word_score']:g})",
    )
    parser.add_argument("--nbest", type=int, help=f"hypotheses kept for --rescore-lm (default: {d['nbest']})")
    parser.add_argument(
        "--set",
        dest="set_name",
        help="name of the decoded set; with references, scores go to <model>/decode/<set>/ and "
        "the figures into the experiment's metrics.json (without --set: scored into "
        "<model>/decode/adhoc/, not recorded)",
    )


def add_search_options(parser: argparse.ArgumentParser) -> None:
    """The first-pass search options, the same for ``recur decode`` and ``recur stream`` (DecodeOptions)."""
    parser.add_argument("--beam", type=int, default=0, help="beam size; 0 = greedy")
    parser.add_argument(
        "--lm",
        help="language model for beam search: a KenLM file (.arpa/.bin), or a recur LM (experiment folder or .ckpt)",
    )
    parser.add_argument("--lexicon", help="lexicon for --lm (default: the LM's words, spelled in the model's tokens)")
    parser.add_argument("--lm-weight", type=float, default=0.5, help="LM weight in beam search")
    parser.add_argument(
        "--beam-tokens", type=int, default=8, help="tokens considered per frame in beam search"
    )
    parser.add_argument("--word-score", type=float, default=0.0, help="word insertion score")
    parser.add_argument(
        "--blank-penalty",
        type=float,
        default=0.0,
        help="lower the blank's log-probability by this much on every frame before decoding (greedy or beam); "
        "a model too sure of the blank deletes tokens",
    )


def _options(args: argparse.Namespace):
    """The command line's decoding options; rescoring options without --rescore-lm are refused."""
    from toolkit.api import DecodeOptions
    from toolkit.errors import UserError

    given = [key for key in RESCORING_DEFAULTS if getattr(args, key) is not None]
    if given and not args.rescore_lm:
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        raise UserError(f"{flags}: options of n-best rescoring; add --rescore-lm LM, or leave them out")
    rescoring = {key: RESCORING_DEFAULTS[key] if getattr(args, key) is None else getattr(args, key)
                 for key in RESCORING_DEFAULTS}
    return DecodeOptions(
        beam=args.beam, beam_tokens=args.beam_tokens, lm=args.lm, lm_weight=args.lm_weight,
        word_score=args.word_score, lexicon=args.lexicon, blank_penalty=args.blank_penalty,
        rescore_lm=args.rescore_lm, **rescoring,
    )  # fmt: skip


def _model(args: argparse.Namespace):
    """The --model (several: their ensemble) as one AcousticModel."""
    from toolkit.api import AcousticModel, load_task
    from toolkit.decode.ensemble import CTCEnsemble

    tasks = [load_task(m, args.device, expect="asr") for m in args.model]
    if len(tasks) == 1:
        return AcousticModel(tasks[0], source=args.model[0])
    return AcousticModel(CTCEnsemble(tasks, args.fusion), source=args.exp_dir)


def run(args: argparse.Namespace) -> int:
    from toolkit.data.io import write_text
    from toolkit.errors import UserError

    if any((Path(m) / "model.onnx").is_file() for m in args.model):  # an export folder (recur export)
        from toolkit.export.decode import decode_export_folder

        return decode_export_folder(args)

    if len(args.model) > 1 and args.set_name and not args.exp_dir:
        raise UserError("--set with several --model: name the folder for the ensemble's scores with --exp-dir")
    options = _options(args)
    options.check()
    model = _model(args)
    exp_dir = Path(args.exp_dir) if args.exp_dir else (Path(args.model[0]) if Path(args.model[0]).is_dir() else None)
    decoder = model.decoder(options, lexicon_dir=exp_dir)

    def report(uid: str, message: str) -> None:
        print(f"recur decode: skipped {message}", file=sys.stderr)

    result = model.transcribe(
        args.inputs, decoder=decoder, references=args.ref, batch_seconds=args.batch_seconds, progress=True,
        on_error=report, blank_penalty=options.blank_penalty,
    )  # fmt: skip
    lines = "".join(f"{r.id}\t{r.text}\n" for r in result)
    printed = transcripts_printed(args, bool(result.refs))
    if args.out:
        write_text(args.out, lines)
    elif printed:
        sys.stdout.write(lines)
    print(
        f"recur decode: {len(result)} decoded, {len(result.skipped)} skipped; {result.audio_s:.1f} s of audio in "
        f"{result.elapsed_s:.1f} s, real-time factor {result.rtf:.3f}",
        file=sys.stderr,
    )
    score_result("decode", model, result, args, options, exp_dir, printed=printed)
    return 0 if len(result) or not (len(result) + len(result.skipped)) else 1


def transcripts_printed(args: argparse.Namespace, scored: bool) -> bool:
    """Whether ``recur decode`` prints the transcripts (``id<TAB>text`` lines on standard output): yes,
    unless ``--out`` takes them, or the set is recorded (``--set`` with references), whose transcripts
    go, beside its reference and alignment, into ``decode/<set>/recogs.txt`` (and the printed summary
    says where), as in a recipe, where a test set's transcripts would bury the results."""
    return not args.out and not (args.set_name and scored)


def score_result(
    command: str, model, result, args: argparse.Namespace, options, exp_dir: Path | None, printed: bool = True
) -> str | None:
    """Score ``result`` where it has references and print the WER line (``recur decode`` and ``recur stream``);
    returns the scoring tag, None when nothing was scored. With --set and an experiment folder the figures go
    into its metrics.json; an ad-hoc decode (no --set) is scored under decode/adhoc/, so it never replaces the
    files of a recorded set of the same name (the results table is made from metrics.json). ``printed``:
    whether the transcripts were printed; if not, the line says which file holds them."""
    from toolkit.decode.scoring import score_line, unscored_warning

    if args.set_name and not result.refs:
        print(unscored_warning(command, args.set_name), file=sys.stderr)
    if not result.refs:
        return None
    if exp_dir is not None and args.set_name:
        tag, out_dir, figures = model.record(result, args.set_name, options, exp_dir)
    else:
        manifests = [Path(i).stem for i in args.inputs if str(i).endswith(".jsonl")]
        tag = (args.set_name or (manifests[0] if len(manifests) == 1 else "set")) + options.tag
        base = exp_dir / "decode" if exp_dir else Path(args.out or "./x").parent / "decode"
        out_dir = (base if args.set_name else base / "adhoc") / tag
        figures = result.write_scoring(out_dir, name=tag)
    print(score_line(command, tag, figures, out_dir, printed or bool(args.out)))
    return tag
