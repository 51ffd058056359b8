"""``recur stats``: global CMVN statistics of a training manifest, saved as JSON."""

from __future__ import annotations

import argparse
from collections import Counter

from toolkit.errors import ConfigError

COMMAND = "stats"
HELP = "compute global CMVN (mean/std of fbank features) over a training manifest; save as JSON"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="training manifest (.jsonl)")
    parser.add_argument("--out", required=True, help="output JSON (e.g. exp/<corpus>/cmvn.json)")
    parser.add_argument(
        "--num-mel-bins",
        type=int,
        help="mel bins (default: 80 at 16 kHz and above, 40 below, as the recipes use; the model's feat_dim "
        "must match)",
    )
    parser.add_argument(
        "--sampling-rate",
        type=int,
        help="rate the model reads audio at (default: the manifest's own rate, the most common one if mixed)",
    )
    parser.add_argument("--num-workers", type=int, default=0, help="loader processes computing features")


def run(args: argparse.Namespace) -> int:
    import torch

    from toolkit.data.dataset import compute_cmvn
    from toolkit.data.features import Fbank
    from toolkit.data.manifest import read_manifest

    torch.set_num_threads(1)  # one small FFT per utterance: more threads only contend
    entries = read_manifest(args.manifest)
    rate = args.sampling_rate or manifest_rate(entries)
    bins = args.num_mel_bins or default_mel_bins(rate)
    if rate <= 0 or bins <= 0:
        raise ConfigError(f"--sampling-rate {rate} / --num-mel-bins {bins}: give positive values")
    stats = compute_cmvn(entries, Fbank(bins, rate), args.out, args.num_workers)
    print(
        f"recur stats: CMVN over {stats.count} frames of {len(entries)} utterances ({rate} Hz, {bins} mel bins; "
        f"train the model with sampling_rate {rate} and feat_dim {bins}, as recur fit --data_dir does) "
        f"saved to {args.out}"
    )


def manifest_rate(entries: list[dict]) -> int:
    """The sampling rate most of a manifest's entries declare (16 kHz when none does)."""
    rates = Counter(int(e["sampling_rate"]) for e in entries if e.get("sampling_rate"))
    return rates.most_common(1)[0][0] if rates else 16000


def default_mel_bins(rate: int) -> int:
    """80 mel bins up to 8 kHz for wideband audio; 40 below 16 kHz (FSDD's 8 kHz: bins up to 4 kHz)."""
    return 80 if rate >= 16000 else 40
    return 0
