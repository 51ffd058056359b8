"""``recur export``: a trained CTC model as a deployment folder (ONNX graph + plain files), decoded without
PyTorch by ``toolkit.deploy`` (and by ``recur decode --model DIR``)."""

from __future__ import annotations

import argparse

COMMAND = "export"
HELP = (
    "export a trained CTC model for deployment: model.onnx (streaming form for unidirectional models), "
    "tokens.txt, config.json, and optionally the lexicon and KenLM model for beam search"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="experiment folder (exp/<corpus>/<model>) or a .ckpt file")
    parser.add_argument("--out", required=True, help="the folder to write (created)")
    parser.add_argument(
        "--form",
        choices=("stream", "utterance"),
        help="stream: chunk by chunk with the state and subsampling context as inputs and outputs; utterance: "
        "whole utterances with lengths (default: stream for unidirectional frame-stacking models, else utterance)",
    )
    parser.add_argument(
        "--indrnn-form",
        choices=("scan", "loop", "rnn"),
        default="scan",
        help="how the IndRNN recurrence is written in ONNX: a Scan over time (fastest), a Loop, or the RNN "
        "operator with a diagonal recurrent matrix",
    )
    parser.add_argument("--lm", help="KenLM language model (ARPA or .bin) to copy in for beam search")
    parser.add_argument(
        "--lexicon", help="lexicon to copy in (default: with an ARPA --lm, its words spelled in the model's tokens)"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the comparison with PyTorch's log-probabilities")


def run(args: argparse.Namespace) -> int:
    from toolkit.export import export_model

    result = export_model(args.model, args.out, args.form, args.indrnn_form, args.lm, args.lexicon,
                          check=not args.no_check)  # fmt: skip
    files = sorted(p.name for p in result.folder.iterdir())
    print(f"recur export: {result.folder}: {', '.join(files)} ({result.form} form, model.onnx "
          f"{result.onnx_bytes / 1e6:.2f} MB)")  # fmt: skip
    if result.max_abs_diff is not None:
        chunked = "" if result.chunked_max_abs_diff is None else f", chunk by chunk {result.chunked_max_abs_diff:.1e}"
        print(f"recur export: max |log-prob difference| vs PyTorch on random features: {result.max_abs_diff:.1e}"
              f"{chunked}")  # fmt: skip
    return 0
