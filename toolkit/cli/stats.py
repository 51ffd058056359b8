"""``recur stats``: global CMVN statistics of a training manifest, saved as JSON."""

from __future__ import annotations

import argparse

COMMAND = "stats"
HELP = "compute global CMVN (mean/std of fbank features) over a training manifest; save as JSON"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="training manifest (.jsonl)")
    parser.add_argument("--out", required=True, help="output JSON (e.g. exp/<corpus>/cmvn.json)")
    parser.add_argument("--num-mel-bins", type=int, default=80)
    parser.add_argument("--sampling-rate", type=int, default=16000, help="rate the model reads audio at")
    parser.add_argument("--num-workers", type=int, default=0, help="loader processes computing features")


def run(args: argparse.Namespace) -> int:
    import torch

    from toolkit.data.dataset import compute_cmvn
    from toolkit.data.features import Fbank
    from toolkit.data.manifest import read_manifest

    torch.set_num_threads(1)  # one small FFT per utterance: more threads only contend
    entries = read_manifest(args.manifest)
    stats = compute_cmvn(entries, Fbank(args.num_mel_bins, args.sampling_rate), args.out, args.num_workers)
    print(f"recur stats: CMVN over {stats.count} frames of {len(entries)} utterances saved to {args.out}")
    return 0
