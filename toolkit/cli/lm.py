"""``recur lm``: evaluate a language model on a text (perplexity / bits per character) or sample from it."""

from __future__ import annotations

import argparse

COMMAND = "lm"
HELP = "language models: 'eval' (perplexity, BPC, per-sentence scores) and 'sample'"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lm_command", metavar="ACTION", required=True)
    ev = sub.add_parser(
        "eval",
        help="perplexity / bits per character of a text file",
        description="Perplexity (and bits per character) of a text under a trained recur language model.",
    )
    ev.add_argument("--model", required=True, help="experiment folder or .ckpt of a language model")
    ev.add_argument(
        "--text", required=True, help="text file, one sentence per line, or a manifest (.jsonl: its transcripts)"
    )
    ev.add_argument("--bptt", type=int, default=256, help="window length in tokens (state is carried across windows)")
    ev.add_argument("--scores", help="write per-sentence scores (bits<TAB>text) here")
    ev.add_argument("--dynamic-lr", type=float, default=0.0, help="dynamic evaluation learning rate (0: off)")
    ev.add_argument(
        "--dynamic-decay", type=float, default=0.0, help="dynamic evaluation decay towards the trained weights"
    )
    ev.add_argument("--set", dest="set_name", help="record the figures in <model>/metrics.json under this name")
    ev.add_argument("--device", default="cpu", help="cpu or cuda")
    sa = sub.add_parser(
        "sample",
        help="generate text",
        description="Sample text from a trained recur language model, continuing --prompt (--num samples).",
    )
    sa.add_argument("--model", required=True, help="experiment folder or .ckpt of a language model")
    sa.add_argument("--prompt", default="", help="text to continue")
    sa.add_argument("--max-tokens", type=int, default=100, help="tokens generated per sample")
    sa.add_argument(
        "--temperature", type=float, default=1.0, help="below 1: likelier, blander text; above 1: more varied"
    )
    sa.add_argument("--num", type=int, default=1, help="number of samples")
    sa.add_argument("--seed", type=int, default=0, help="random seed of the first sample (the next ones count up)")
    sa.add_argument("--device", default="cpu", help="cpu or cuda")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toolkit.api import LanguageModel, load_task
    from toolkit.data.lm import read_texts
    from toolkit.tasks.lm_eval import write_sentence_scores
    from toolkit.train.metrics_file import update_final

    lm = LanguageModel(load_task(args.model, args.device, expect="lm"), source=args.model)
    if args.lm_command == "sample":
        for i in range(args.num):
            print(lm.sample(args.prompt, args.max_tokens, args.temperature, args.seed + i))
        return 0
    lines = read_texts(args.text)
    score = lm.score(lines, args.bptt, args.dynamic_lr, args.dynamic_decay, progress=True)
    print(eval_summary(args.text, score, lm.per_char))
    if args.scores:
        write_sentence_scores(args.scores, lines, score)
    if args.set_name and Path(args.model).is_dir():
        figures = {f"{args.set_name}/ppl": score.ppl, f"{args.set_name}/oov": score.oov}
        if lm.per_char:
            figures[f"{args.set_name}/bpc"] = score.bits_per_token
        update_final(args.model, figures)
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
