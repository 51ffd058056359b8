"""``recur decode --model DIR`` for an export folder: the same output as for a checkpoint (``id<TAB>text``
lines, the summary on stderr, scoring files where there are references), computed by ``toolkit.deploy``
(onnxruntime, numpy features, flashlight's beam search)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolkit.errors import UserError


def is_export_folder(path: str) -> bool:
    return (Path(path) / "model.onnx").is_file()


def _refuse_unsupported(args: argparse.Namespace) -> None:
    if len(args.model) > 1:
        raise UserError("an export folder decodes alone: give one --model (ensembles need the checkpoints)")
    if args.rescore_lm or any(getattr(args, k) is not None for k in ("rescore_weight", "rescore_word_score", "nbest")):
        raise UserError("--rescore-lm needs PyTorch: decode the checkpoint, not the export folder, to rescore")
    if str(args.device).startswith("cuda"):
        raise UserError("an export folder decodes on the CPU (onnxruntime); leave out --device")
    if args.beam < 0 or args.beam_tokens < 1:
        raise UserError("--beam must be 0 (greedy) or positive, --beam-tokens at least 1")
    if args.lm and not args.beam:
        raise UserError("--lm needs beam search: add --beam N (e.g. --beam 16)")
    for flag, path in (("--lm", args.lm), ("--lexicon", args.lexicon)):
        if path and not Path(path).is_file():
            raise UserError(f"{flag} {path}: no such file (an export folder takes a KenLM ARPA or .bin file)")


def decode_export_folder(args: argparse.Namespace) -> int:
    """Run ``recur decode`` (its parsed arguments) on the export folder ``args.model[0]``."""
    from toolkit.data.io import write_text
    from toolkit.data.text import read_references
    from toolkit.decode.scoring import score_line, unscored_warning, write_scoring
    from toolkit.deploy import BeamOptions, Recognizer, expand_inputs, transcribe_files

    _refuse_unsupported(args)
    folder = Path(args.model[0])
    rec = Recognizer(folder, threads=1)
    options = BeamOptions(args.beam, args.beam_tokens, args.lm_weight, args.word_score, args.blank_penalty)
    lexicon = args.lexicon
    if args.lm and not lexicon and Path(args.lm).suffix != ".bin":
        lexicon = _derived_lexicon(rec, args.lm)
    decoder = rec.decoder(options, args.lm, lexicon)
    utts = expand_inputs(args.inputs)
    if args.ref:
        refs = read_references(args.ref)
        for u in utts:
            u.ref = refs.get(u.id, u.ref)
    skipped: list[str] = []

    def report(utt, reason: str) -> None:
        skipped.append(utt.id)
        print(f"recur decode: skipped {reason}", file=sys.stderr)

    results, audio_s, elapsed = transcribe_files(rec, utts, decoder, args.blank_penalty, report)
    refs = {u.id: rec.tokens.normalize(u.ref) for u in utts if u.ref is not None}
    lines = "".join(f"{r.id}\t{r.text}\n" for r in results)
    # as recur decode with a checkpoint: a recorded set's transcripts are in its recogs.txt, not printed
    printed = not args.out and not (args.set_name and refs)
    if args.out:
        write_text(args.out, lines)
    elif printed:
        sys.stdout.write(lines)
    rtf = elapsed / audio_s if audio_s else 0.0
    print(
        f"recur decode: {len(results)} decoded, {len(skipped)} skipped; {audio_s:.1f} s of audio in {elapsed:.1f} s, "
        f"real-time factor {rtf:.3f}",
        file=sys.stderr,
    )
    if args.set_name and not refs:
        print(unscored_warning("decode", args.set_name), file=sys.stderr)
    if refs:
        tag = f"_beam{args.beam}" if args.beam else ""
        tag += "_kenlm" if decoder is not None and decoder.uses_lm else ""
        tag += f"_bp{args.blank_penalty:g}" if args.blank_penalty else ""
        manifests = [Path(i).stem for i in args.inputs if str(i).endswith(".jsonl")]
        tag = (args.set_name or (manifests[0] if len(manifests) == 1 else "set")) + tag
        # the export folder is a deployed artefact, not an experiment folder: scores go beside --out (or
        # into ./decode), as for a lone .ckpt, unless --exp-dir names the experiment
        base = Path(args.exp_dir) / "decode" if args.exp_dir else Path(args.out or "./x").parent / "decode"
        out_dir = (base if args.set_name else base / "adhoc") / tag
        hyps = {r.id: r.text for r in results}
        figures = write_scoring(refs, hyps, out_dir, name=tag)
        if args.exp_dir and args.set_name:
            from toolkit.train.metrics_file import update_final

            update_final(Path(args.exp_dir), {f"{tag}/wer": figures["wer"], f"{tag}/cer": figures["cer"],
                                              f"{tag}/rtf": rtf})  # fmt: skip
        print(score_line("decode", tag, figures, out_dir, printed or bool(args.out)))
    return 0 if results or not (len(results) + len(skipped)) else 1


def _derived_lexicon(rec, lm: str) -> Path:
    """The lexicon of an ARPA ``lm`` given on the command line, derived as ``recur decode`` derives it for a
    lone checkpoint (the LM's words spelled in the model's tokens, beside the LM in ``decode/``)."""
    from toolkit.api.decoding import arpa_words, spelling
    from toolkit.decode.beam import write_lexicon

    if rec.tokens.kind not in ("char", "word"):
        raise UserError(f"--lm with a {rec.tokens.kind} export folder needs --lexicon (words spelled in its pieces)")
    target = Path(lm).parent / "decode" / f"lexicon.{Path(lm).stem}.txt"
    return write_lexicon(arpa_words(Path(lm)), target, spelling(rec.tokens, rec.tokens.symbols))


def stream_export_folder(args: argparse.Namespace) -> int:
    """``recur stream --model DIR`` for an export folder: each input fed to a ``toolkit.deploy`` stream in
    chunks of ``--chunk-ms``; final lines as ``recur decode`` prints them, compute per chunk and real-time
    factor on stderr. Inputs are files, folders or manifests (standard input needs a checkpoint)."""
    import statistics
    import time

    from toolkit.data.io import write_text
    from toolkit.deploy import BeamOptions, Recognizer, expand_inputs
    from toolkit.deploy.audio import BadAudio, read_audio

    if "-" in args.inputs:
        raise UserError("recur stream: standard input ('-') streams with a checkpoint, not an export folder")
    if args.beam < 0 or args.beam_tokens < 1 or args.chunk_ms <= 0:
        raise UserError("--beam must be 0 (greedy) or positive, --beam-tokens at least 1, --chunk-ms positive")
    rec = Recognizer(Path(args.model), threads=1)
    options = BeamOptions(args.beam, args.beam_tokens, args.lm_weight, args.word_score, args.blank_penalty)
    lexicon = args.lexicon
    if args.lm and not lexicon and Path(args.lm).suffix != ".bin":
        lexicon = _derived_lexicon(rec, args.lm)
    size = rec.chunk_samples(args.chunk_ms)
    lines, compute, audio_s, skipped = [], [], 0.0, 0
    for utt in expand_inputs(args.inputs):
        try:
            wave, _ = read_audio(utt.path, rec.sampling_rate, utt.offset, utt.duration)
        except BadAudio as err:
            skipped += 1
            print(f"recur stream: skipped {err}", file=sys.stderr)
            continue
        stream = rec.stream(rec.decoder(options, args.lm, lexicon), args.blank_penalty)
        for start in range(0, len(wave), size):
            t0 = time.perf_counter()
            stream.accept(wave[start : start + size])
            compute.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        text = stream.finish()
        compute[-1:] = [compute[-1] + time.perf_counter() - t0] if compute else []
        audio_s += len(wave) / rec.sampling_rate
        lines.append(f"{utt.id}\t{text}\n")
    if args.out:
        write_text(args.out, "".join(lines))
    else:
        sys.stdout.write("".join(lines))
    if compute:
        print(
            f"recur stream: {len(lines)} decoded, {skipped} skipped; {audio_s:.1f} s of audio in chunks of "
            f"{args.chunk_ms:g} ms; compute per chunk median {1000 * statistics.median(compute):.2f} ms; "
            f"real-time factor {sum(compute) / audio_s:.3f} (onnxruntime, {args.model})",
            file=sys.stderr,
        )
    return 0 if lines or not skipped else 1
