"""Capacity of a streaming server: how many concurrent real-time streams the CPU (one core with
``recur --threads 1``) sustains, res_indrnn against an LSTM with as many parameters.

Each model is an untrained unidirectional ``CTCTask`` as ``recur fit`` builds it (frame stacking, the
encoder sized by ``param_budget`` through ``toolkit.nn.width_for_params``). N streams are served by one
:class:`toolkit.decode.stream.StreamBatch`: every round each stream brings a ``chunk_ms`` chunk of audio,
and the round (queueing the chunks, fbank, CMVN, stacking per stream; the encoder once for all streams;
greedy decoding per stream) is timed. Every stream's real-time factor is the round's time over the
chunk's duration, so N streams run in real time while the mean round time stays under ``chunk_ms``. The
largest such N is found by doubling N, then bisecting.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from toolkit import nn as rnn

from .ctc_step import CTCConfig, build_task

STREAM_MODELS = ("res_indrnn", "lstm")
PREFIX = "streams/"


@dataclass(frozen=True)
class StreamsConfig:
    """One capacity search: models of ``num_layers`` layers and ``param_budget`` encoder parameters over
    ``feat_dim`` mel bins at ``sampling_rate``, stacked by ``subsampling``; chunks of ``chunk_ms``;
    ``warmup`` untimed and ``rounds`` timed rounds per stream count; at most ``max_streams``."""

    param_budget: int = 1_500_000
    num_layers: int = 4
    feat_dim: int = 80
    sampling_rate: int = 16000
    subsampling: int = 3
    chunk_ms: float = 160.0
    warmup: int = 3
    rounds: int = 20
    max_streams: int = 2048


def cpu_streams_grid() -> list[StreamsConfig]:
    """A realistic small recogniser: 4 layers, 1.5M-parameter encoders, 80 mel bins, 16 kHz, stack 3."""
    return [StreamsConfig()]


def quick_streams_grid() -> list[StreamsConfig]:
    """A tiny search that runs in seconds (tests and smoke runs; figures meaningless)."""
    return [StreamsConfig(param_budget=150_000, num_layers=3, feat_dim=8, warmup=1, rounds=2, max_streams=4)]


def build_streaming_task(encoder: str, cfg: StreamsConfig):
    """The unidirectional ``CTCTask`` ``recur fit`` would build, untrained, in evaluation mode."""
    ctc = CTCConfig(
        batch=1, frames=1, num_layers=cfg.num_layers, param_budget=cfg.param_budget, feat_dim=cfg.feat_dim,
        subsampling=cfg.subsampling, bidirectional=False,
    )  # fmt: skip
    task = build_task(encoder, ctc)
    task.sampling_rate = cfg.sampling_rate
    return task.eval()


def _audio(cfg: StreamsConfig, seconds: float = 8.0) -> np.ndarray:
    """A pool of speech-like audio (tones, noise bursts, pauses) the streams read at different offsets."""
    rng = np.random.default_rng(0)
    sr, parts = cfg.sampling_rate, []
    while sum(map(len, parts)) < seconds * sr:
        n = int(rng.uniform(0.06, 0.25) * sr)
        kind = rng.integers(3)
        if kind == 0:
            parts.append(0.3 * np.sin(2 * np.pi * rng.uniform(100, 3000) * np.arange(n) / sr))
        else:
            parts.append((rng.uniform(0.02, 0.3) if kind == 1 else 0.002) * rng.standard_normal(n))
    return np.concatenate(parts).astype(np.float32)


def time_rounds(task, streams: int, cfg: StreamsConfig, pool: np.ndarray) -> list[float]:
    """Seconds of each timed round of ``streams`` streams served together (greedy decoding)."""
    from toolkit.decode.stream import StreamBatch, StreamRecognizer, chunk_samples

    batch = StreamBatch(StreamRecognizer(task))
    size = chunk_samples(cfg.sampling_rate, cfg.chunk_ms)
    offsets = [(i * 7919 * 16) % (len(pool) - size) for i in range(streams)]
    for i in range(streams):
        batch.add(f"s{i}")
    times = []
    for r in range(cfg.warmup + cfg.rounds):
        start = time.perf_counter()
        for i in range(streams):
            at = (offsets[i] + r * size) % (len(pool) - size)
            batch.accept(f"s{i}", pool[at : at + size])
        batch.step()
        if r >= cfg.warmup:
            times.append(time.perf_counter() - start)
    return times


def _figures(streams: int, times: list[float], chunk_s: float) -> dict:
    from toolkit.decode.stream import percentile

    mean = statistics.fmean(times)
    return {
        "streams": streams,
        "round_mean_s": mean,
        "round_median_s": statistics.median(times),
        "round_p95_s": percentile(times, 95),
        "rtf": mean / chunk_s,
    }


def capacity(task, cfg: StreamsConfig, on_try: Callable[[int], None] | None = None) -> tuple[dict | None, list]:
    """The most streams whose mean round time stays under the chunk's duration: (figures at that
    count or None when even one stream is too slow, every count tried with its figures)."""
    chunk_s = cfg.chunk_ms / 1000.0
    pool = _audio(cfg)
    tried: dict[int, dict] = {}

    def ok(n: int) -> bool:
        if on_try is not None:
            on_try(n)
        tried[n] = _figures(n, time_rounds(task, n, cfg, pool), chunk_s)
        return tried[n]["round_mean_s"] < chunk_s

    if not ok(1):
        return None, list(tried.values())
    good, bad = 1, None
    while bad is None and good < cfg.max_streams:
        n = min(2 * good, cfg.max_streams)
        if ok(n):
            good = n
        else:
            bad = n
    while bad is not None and bad - good > 1:
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return tried[good], sorted(tried.values(), key=lambda f: f["streams"])


def describe(encoder: str, task, cfg: StreamsConfig) -> dict:
    """The row's fixed fields: sizes and parameter counts."""
    return {
        "model": PREFIX + encoder,
        "case": "streams",
        "hidden": int(task.encoder.hidden_size),
        **asdict(cfg),
        "vocab": task.tokenizer.vocab_size,
        "params": rnn.count_params(task),
        "encoder_params": rnn.count_params(task.encoder),
        "decoding": "greedy",
    }


def run_streams_bench(grid: list[StreamsConfig], progress: bool = True) -> list[dict]:
    """One row per (size, model): the capacity search's result; the res_indrnn row also carries
    ``streams_vs_lstm`` (its capacity over the LSTM's)."""
    from tqdm import tqdm

    rows = []
    bar = tqdm(desc="streams", unit="try", disable=not progress)
    for cfg in grid:
        size_rows = {}
        for encoder in STREAM_MODELS:
            row = {"model": PREFIX + encoder, "case": "streams", **asdict(cfg)}
            try:
                torch.manual_seed(0)
                task = build_streaming_task(encoder, cfg)
                row = describe(encoder, task, cfg)

                def on_try(n: int, name: str = encoder) -> None:
                    bar.update(1)
                    bar.set_postfix_str(f"{name} {n} streams")

                with torch.inference_mode():
                    best, tried = capacity(task, cfg, on_try)
                row["tried"] = tried
                row.update(best or {"streams": 0})
            except (RuntimeError, ValueError) as err:
                row["error"] = (str(err).splitlines() or [type(err).__name__])[0][:300]
            size_rows[encoder] = row
        lstm = size_rows.get("lstm", {})
        for row in size_rows.values():
            if row.get("streams") and lstm.get("streams"):
                row["streams_vs_lstm"] = row["streams"] / lstm["streams"]
        rows.extend(size_rows.values())
    bar.close()
    return rows
