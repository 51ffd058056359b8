"""``python -m toolkit.deploy FOLDER AUDIO...``: decode with an exported model, no PyTorch needed.

Prints ``id<TAB>text`` per utterance and a summary line on stderr, as ``recur decode`` does.
"""

from __future__ import annotations

import argparse
import sys

from toolkit.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolkit.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="folder written by recur export")
    parser.add_argument("inputs", nargs="+", help="audio files, folders or .jsonl manifests")
    parser.add_argument("--beam", type=int, default=0, help="beam size; 0 = greedy (default)")
    parser.add_argument("--beam-tokens", type=int, default=8, help="tokens tried per frame (default 8)")
    parser.add_argument("--lm-weight", type=float, default=0.5, help="weight of the folder's LM (default 0.5)")
    parser.add_argument("--word-score", type=float, default=0.0, help="word insertion score (default 0)")
    parser.add_argument("--blank-penalty", type=float, default=0.0, help="subtracted from the blank's log-prob")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    parser.add_argument("--chunk-ms", type=float, default=0.0,
                        help="stream each file in chunks of this many ms (a unidirectional model's export); "
                             "default 0: whole files")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        from . import BeamOptions, Recognizer, expand_inputs, transcribe_files

        if args.chunk_ms < 0:
            raise UserError(f"--chunk-ms {args.chunk_ms:g}: give a positive chunk length in ms, or 0 for whole files")
        rec = Recognizer(args.model, threads=args.threads)
        options = BeamOptions(args.beam, args.beam_tokens, args.lm_weight, args.word_score, args.blank_penalty)
        decoder = rec.decoder(options)
        skipped = []

        def report(utt, reason: str) -> None:
            skipped.append(utt.id)
            print(f"decode: skipped {reason}", file=sys.stderr)

        results, audio_s, elapsed = transcribe_files(rec, expand_inputs(args.inputs), decoder, args.blank_penalty,
                                                     report, args.chunk_ms)  # fmt: skip
    except UserError as err:
        print(f"decode: error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(f"{r.id}\t{r.text}\n" for r in results))
    rtf = elapsed / audio_s if audio_s else 0.0
    print(f"decode: {len(results)} decoded, {len(skipped)} skipped; {audio_s:.1f} s of audio in {elapsed:.1f} s, "
          f"real-time factor {rtf:.3f}", file=sys.stderr)  # fmt: skip
    return 0 if results or not skipped else 1


if __name__ == "__main__":
    sys.exit(main())
