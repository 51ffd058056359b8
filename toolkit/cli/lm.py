"""``recur lm``: evaluate a language model on a text (perplexity / bits per character) or sample from it."""

from __future__ import annotations

import argparse

COMMAND = "lm"
HELP = "language models: 'eval' (perplexity, BPC, per-sentence scores) and 'sample'"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lm_command", metavar="ACTION", required=True)
    ev = sub.add_parser("eval", help="perplexity / bits per character of a text file")
    ev.add_argument("--model", required=True, help="experiment folder or .ckpt of a language model")
    ev.add_argument(
        "--text", required=True, help="text file, one sentence per line, or a manifest (.jsonl: its transcripts)"
    )
    ev.add_argument("--bptt", type=int, default=256, help="window length (state is carried across windows)")
    ev.add_argument("--scores", help="write per-sentence scores (bits<TAB>text) here")
    ev.add_argument("--dynamic-lr", type=float, default=0.0, help="dynamic evaluation learning rate (0 = off)")
    ev.add_argument("--dynamic-decay", type=float, default=0.0, help="dynamic evaluation decay to the weights")
    ev.add_argument("--set", dest="set_name", help="record the figures in <model>/metrics.json under this name")
    ev.add_argument("--device", default="cpu")
    sa = sub.add_parser("sample", help="generate text")
    sa.add_argument("--model", required=True, help="experiment folder or .ckpt of a language model")
    sa.add_argument("--prompt", default="", help="text to continue")
    sa.add_argument("--max-tokens", type=int, default=100)
    sa.add_argument("--temperature", type=float, default=1.0)
    sa.add_argument("--num", type=int, default=1, help="number of samples")
    sa.add_argument("--seed", type=int, default=0)
    sa.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toolkit.data.lm import read_texts
    from toolkit.tasks.lm_eval import load_lm, sample, score_text, write_sentence_scores

    model = load_lm(args.model, args.device)
    if args.lm_command == "sample":
        for i in range(args.num):
            print(sample(model, args.prompt, args.max_tokens, args.temperature, args.seed + i))
        return 0
    lines = read_texts(args.text)
    score = score_text(model, lines, args.bptt, args.dynamic_lr, args.dynamic_decay)
    print(eval_summary(args.text, score, model.per_char))
    if args.scores:
        write_sentence_scores(args.scores, lines, score)
    if args.set_name and Path(args.model).is_dir():
        from toolkit.decode.transcribe import update_metrics

        figures = {f"{args.set_name}/ppl": score.ppl, f"{args.set_name}/oov": score.oov}
        if model.per_char:
            figures[f"{args.set_name}/bpc"] = score.bits_per_token
        update_metrics(Path(args.model), figures)
    return 0


def eval_summary(text: str, score, per_char: bool) -> str:
    """The one line ``recur lm eval`` prints. A character model's tokens are the characters, so its
    bits per token are its BPC (the text's own character count would also count the spaces that
    separate PTB's characters); a word or subword model also gets bits per character of the text."""
    unit = "characters" if per_char else "tokens"
    line = (
        f"recur lm eval: {text}: {score.tokens} predicted {unit}, {score.oov} out-of-vocabulary "
        f"(scored as <unk>); perplexity {score.ppl:.3f}; {score.bits_per_token:.4f} bits per {unit[:-1]}"
    )
    return line if per_char else line + f"; {score.bpc:.4f} bits per character of the text"
