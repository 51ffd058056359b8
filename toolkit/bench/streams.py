"""Capacity of a streaming server: how many concurrent real-time streams the CPU (one core with
``recur --threads 1``) sustains, res_indrnn against an LSTM with as many parameters.

Each model is an untrained unidirectional ``CTCTask`` as ``recur fit`` builds it (frame stacking, the
encoder sized by ``param_budget`` through ``toolkit.nn.width_for_params``). N streams are served by one
:class:`toolkit.decode.stream.StreamBatch`: every round each stream brings a ``chunk_ms`` chunk of audio,
and the round (queueing the chunks, fbank, CMVN, stacking per stream; the encoder once for all streams;
greedy decoding per stream) is timed. Every stream's real-time factor is the round's time over the
chunk's duration, so N streams run in real time while a round takes less than ``chunk_ms`` (the median
round: see :func:`real_time`). The largest such N is found by doubling N, then bisecting; the two models'
searches take turns, so both meet the same load on a shared machine.
"""

from __future__ import annotations

import statistics
import time
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

    mean, median = statistics.fmean(times), statistics.median(times)
    return {
        "streams": streams,
        "round_mean_s": mean,
        "round_median_s": median,
        "round_p95_s": percentile(times, 95),
        "rtf": mean / chunk_s,
        "rtf_median": median / chunk_s,
    }


class CapacitySearch:
    """The most streams a model serves in real time: double the count from 1 until a round takes longer
    than the chunk, then bisect. Each count is timed by the caller (``next`` / ``record``), so searches
    for several models can take turns and share whatever load the machine has meanwhile."""

    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        self.good, self.bad = 0, None
        self.tried: dict[int, dict] = {}

    def next(self) -> int | None:
        """The stream count to time next; None when the search is over."""
        if not self.tried:
            return 1
        if self.good == 0:
            return None  # one stream is already slower than real time
        if self.bad is None:
            return min(2 * self.good, self.max_streams) if self.good < self.max_streams else None
        return (self.good + self.bad) // 2 if self.bad - self.good > 1 else None

    def record(self, figures: dict, real_time: bool) -> None:
        n = figures["streams"]
        self.tried[n] = figures
        if real_time:
            self.good = n
        else:
            self.bad = n

    @property
    def best(self) -> dict | None:
        return self.tried.get(self.good)

    @property
    def curve(self) -> list[dict]:
        return [self.tried[n] for n in sorted(self.tried)]


def real_time(figures: dict, chunk_s: float) -> bool:
    """Real time: the median round (every stream's chunk served) is shorter than a chunk. The median,
    not the mean: on a shared machine, other processes' bursts land on a few rounds."""
    return figures["round_median_s"] < chunk_s


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
    """One row per (size, model): the capacity search's result and every count it timed (``tried``); the
    models' searches take turns, one stream count each. Each row carries ``streams_vs_lstm`` (its
    capacity over the LSTM's)."""
    from tqdm import tqdm

    rows = []
    bar = tqdm(desc="streams", unit="try", disable=not progress)
    for cfg in grid:
        chunk_s = cfg.chunk_ms / 1000.0
        pool = _audio(cfg)
        size_rows, tasks, searches = {}, {}, {}
        for encoder in STREAM_MODELS:
            size_rows[encoder] = {"model": PREFIX + encoder, "case": "streams", **asdict(cfg)}
            try:
                torch.manual_seed(0)
                tasks[encoder] = build_streaming_task(encoder, cfg)
                size_rows[encoder] = describe(encoder, tasks[encoder], cfg)
                searches[encoder] = CapacitySearch(cfg.max_streams)
            except (RuntimeError, ValueError) as err:  # e.g. no width within 2% of the budget
                size_rows[encoder]["error"] = _first_line(err)
        while searches:
            for encoder, search in list(searches.items()):
                n = search.next()
                if n is None:
                    del searches[encoder]
                    continue
                bar.update(1)
                bar.set_postfix_str(f"{encoder} {n} streams")
                try:
                    with torch.inference_mode():
                        figures = _figures(n, time_rounds(tasks[encoder], n, cfg, pool), chunk_s)
                except RuntimeError as err:  # out of memory
                    size_rows[encoder]["error"] = _first_line(err)
                    del searches[encoder]
                    continue
                search.record(figures, real_time(figures, chunk_s))
                size_rows[encoder].update(search.best or {"streams": 0}, tried=search.curve)
        lstm = size_rows.get("lstm", {})
        for row in size_rows.values():
            if row.get("streams") and lstm.get("streams"):
                row["streams_vs_lstm"] = row["streams"] / lstm["streams"]
        rows.extend(size_rows.values())
    bar.close()
    return rows


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:300]
