"""``recur bench --case deploy``: an exported model on onnxruntime against PyTorch eager, on one CPU thread.

Two unidirectional CTC models of equal encoder size (res_indrnn and LSTM; frame stacking by 3 over 80 mel
bins at 16 kHz, random weights) decode the same random 10 s of features:

* offline: the whole utterance in one call; real-time factor = seconds of compute / seconds of audio;
* streaming: 160 ms chunks (16 feature frames) with the encoder state and the frames not yet stacked
  carried from chunk to chunk; the latency of each chunk's call (median and 95th percentile) and the
  real-time factor of the whole stream. PyTorch streams with the task's own modules (the layer contract:
  chunks with the carried state equal one pass), onnxruntime with model.onnx's state inputs and outputs;
* the size of each model.onnx.

A second table compares the ways of writing the IndRNN recurrence in ONNX (``toolkit.export.graph.INDRNN_FORMS``)
on the res_indrnn model: per-chunk latency at 150 ms chunks (15 frames, the one length the ``unrolled`` form
takes), offline real-time factor, model size. Features are random (the features' cost is not timed).
"""

from __future__ import annotations

import datetime
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from toolkit.data.io import write_json, write_text

DEPLOY_MODELS = ("res_indrnn", "lstm")
FORMS = ("scan", "loop", "rnn", "unrolled")


@dataclass(frozen=True)
class DeployConfig:
    seconds: float = 10.0
    chunk_frames: int = 16  # 160 ms at a 10 ms frame shift
    form_chunk_frames: int = 15  # the IndRNN form comparison: a multiple of the stacking factor
    num_layers: int = 4
    param_budget: int = 1_500_000
    feat_dim: int = 80
    subsampling: int = 3
    sampling_rate: int = 16000


def cpu_deploy_config() -> DeployConfig:
    return DeployConfig()


def quick_deploy_config() -> DeployConfig:
    """Tiny: checks the pipeline in seconds; timings meaningless."""
    return DeployConfig(seconds=0.5, num_layers=2, param_budget=20_000, feat_dim=16)


def build_task(encoder: str, cfg: DeployConfig):
    from toolkit.data.tokenizer import SymbolTokenizer
    from toolkit.tasks.asr import CTCTask

    from .ctc_step import CHARS

    return CTCTask(SymbolTokenizer(CHARS, kind="char"), feat_dim=cfg.feat_dim, encoder=encoder,
                   num_layers=cfg.num_layers, bidirectional=False, param_budget=cfg.param_budget,
                   subsampling="stack", subsampling_factor=cfg.subsampling, specaugment=None,
                   sampling_rate=cfg.sampling_rate).eval()  # fmt: skip


def _session(data: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _chunks(feats: np.ndarray, size: int) -> list[np.ndarray]:
    return [feats[:, i : i + size] for i in range(0, feats.shape[1], size)]


class OnnxStream:
    """model.onnx fed chunk by chunk (what ``toolkit.deploy.Stream`` does after its features)."""

    def __init__(self, data: bytes, spec: dict, factor: int, mean: np.ndarray):
        self.session, self.spec, self.factor, self.mean = _session(data), spec, factor, mean

    def whole(self, feats: np.ndarray) -> np.ndarray:
        pad = np.broadcast_to(self.mean, (1, (-feats.shape[1]) % self.factor, feats.shape[2])).astype(np.float32)
        context = np.zeros((1, 0, feats.shape[2]), np.float32)
        return self.session.run(["log_probs"], {"feats": np.concatenate([feats, pad], 1), "context": context,
                                                **self.zero()})[0]  # fmt: skip

    def zero(self) -> dict:
        return {s["input"]: np.zeros((s["shape"][0], 1, s["shape"][2]), np.float32) for s in self.spec["states"]}

    def run(self, chunks: list[np.ndarray]) -> list[float]:
        """Seconds of each chunk's call."""
        states, context, times = self.zero(), np.zeros((1, 0, chunks[0].shape[2]), np.float32), []
        for chunk in chunks:
            start = time.perf_counter()
            if context.shape[1] + chunk.shape[1] >= self.factor:
                out = self.session.run(None, {"feats": chunk, "context": context, **states})
                context = out[1]
                states = {s["input"]: v for s, v in zip(self.spec["states"], out[2:], strict=True)}
            else:
                context = np.concatenate([context, chunk], 1)
            times.append(time.perf_counter() - start)
        return times


class TorchStream:
    """The PyTorch task fed chunk by chunk with its own modules: CMVN, frame stacking of the frames that fill
    a stack (the rest carried), the encoder with its carried state, the output layer."""

    def __init__(self, task):
        self.task, self.factor = task, task.frontend.factor

    def whole(self, feats: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.task(feats, torch.tensor([feats.shape[1]]))[0]

    def run(self, chunks: list[torch.Tensor]) -> list[float]:
        task, k = self.task, self.factor
        state, context, times = None, chunks[0][:, :0], []
        with torch.no_grad():
            for chunk in chunks:
                start = time.perf_counter()
                x = torch.cat([context, chunk], 1)
                ready = x.shape[1] // k * k
                if ready:
                    z = task.cmvn(x[:, :ready])
                    lengths = torch.tensor([ready])
                    z, lengths = task.frontend(z, lengths)
                    y, state = task.encoder(z, lengths, state)
                    task.output(y).log_softmax(-1)
                context = x[:, ready:]
                times.append(time.perf_counter() - start)
        return times


def _figures(times: list[float], chunk_s: float, audio_s: float, passes: int) -> dict:
    per_pass = sum(times) / passes
    ordered = sorted(times)
    return {
        "chunk_median_ms": statistics.median(times) * 1e3,
        "chunk_p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1e3,
        "chunk_ms": chunk_s * 1e3,
        "stream_rtf": per_pass / audio_s,
    }


def _interleaved(contestants: dict, chunks: dict, whole: dict, repeats: int) -> dict[str, dict]:
    """Time each contestant's stream over its chunks and its whole-utterance call, round-robin over
    ``repeats`` passes after one warm-up pass (a burst of load on a shared machine hits all alike).
    ``whole[name]`` is None to skip the whole-utterance call. -> name -> {chunk times, whole times}."""
    times = {name: {"chunks": [], "whole": []} for name in contestants}
    for index in range(repeats + 1):
        for name, stream in contestants.items():
            chunk_times = stream.run(chunks[name])
            whole_time = None
            if whole[name] is not None:
                start = time.perf_counter()
                stream.whole(whole[name])
                whole_time = time.perf_counter() - start
            if index:  # pass 0 warms up
                times[name]["chunks"] += chunk_times
                if whole_time is not None:
                    times[name]["whole"].append(whole_time)
    return times


def run_deploy_bench(cfg: DeployConfig, repeats: int = 5, forms: tuple[str, ...] = FORMS,
                     progress: bool = True) -> dict:
    """Rows for both models on both runtimes, and the IndRNN form comparison (see the module's note)."""
    from toolkit.export.onnx import to_onnx

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = {"meta": _meta(cfg, repeats), "rows": [], "forms": []}
        frames = int(round(cfg.seconds * 100))
        gen = torch.Generator().manual_seed(0)
        feats_t = torch.randn(1, frames, cfg.feat_dim, generator=gen)
        feats = feats_t.numpy()
        audio_s = frames * 0.01
        for encoder in DEPLOY_MODELS:
            if progress:
                print(f"bench deploy: {encoder}, PyTorch and onnxruntime", flush=True)
            task = build_task(encoder, cfg)
            common = {"model": encoder, "hidden": task.encoder.hidden_size,
                      "params": sum(p.numel() for p in task.parameters()),
                      "encoder_params": sum(p.numel() for p in task.encoder.parameters())}  # fmt: skip
            data, spec = to_onnx(task, "stream")
            mean = task.cmvn.mean.numpy().astype(np.float32)
            streams = {"pytorch": TorchStream(task), "onnxruntime": OnnxStream(data, spec, cfg.subsampling, mean)}
            inputs = {"pytorch": feats_t, "onnxruntime": feats}
            diff = float(np.abs(streams["onnxruntime"].whole(feats) - streams["pytorch"].whole(feats_t).numpy()).max())
            chunks = {name: _chunks(x, cfg.chunk_frames) for name, x in inputs.items()}
            timed = _interleaved(streams, chunks, inputs, repeats)
            for runtime, t in timed.items():
                row = {**common, "runtime": runtime, "offline_rtf": statistics.median(t["whole"]) / audio_s,
                       **_figures(t["chunks"], cfg.chunk_frames * 0.01, audio_s, repeats)}  # fmt: skip
                if runtime == "onnxruntime":
                    row.update(onnx_bytes=len(data), indrnn_form="scan" if "indrnn" in encoder else None,
                               max_abs_diff_vs_pytorch=diff)  # fmt: skip
                result["rows"].append(row)
            if encoder == "res_indrnn" and forms:
                if progress:
                    print(f"bench deploy: the IndRNN forms {', '.join(forms)}", flush=True)
                result["forms"] = _forms(task, cfg, feats, audio_s, repeats, forms)
        return result
    finally:
        torch.set_num_threads(threads)


def _forms(task, cfg: DeployConfig, feats: np.ndarray, audio_s: float, repeats: int, forms) -> list[dict]:
    from toolkit.export.onnx import to_onnx

    mean = task.cmvn.mean.numpy().astype(np.float32)
    usable = feats.shape[1] // cfg.form_chunk_frames * cfg.form_chunk_frames
    chunks = _chunks(feats[:, :usable], cfg.form_chunk_frames)
    streams, sizes = {}, {}
    for form in forms:
        example = cfg.form_chunk_frames if form == "unrolled" else 33
        data, spec = to_onnx(task, "stream", form, example_frames=example)
        streams[form], sizes[form] = OnnxStream(data, spec, cfg.subsampling, mean), len(data)
    timed = _interleaved(streams, dict.fromkeys(forms, chunks),
                         {f: None if f == "unrolled" else feats for f in forms}, repeats)  # fmt: skip
    rows = []
    for form, t in timed.items():
        rows.append({"model": "res_indrnn", "indrnn_form": form, "onnx_bytes": sizes[form],
                     **_figures(t["chunks"], cfg.form_chunk_frames * 0.01, usable * 0.01, repeats),
                     "offline_rtf": statistics.median(t["whole"]) / audio_s if t["whole"] else None})  # fmt: skip
    return rows


def _meta(cfg: DeployConfig, repeats: int) -> dict:
    import onnxruntime

    from .runner import _device_name

    return {
        "device": "cpu",
        "device_name": _device_name(torch.device("cpu")),
        "config": asdict(cfg),
        "threads": 1,
        "repeats": repeats,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_start": list(os.getloadavg()),
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def deploy_markdown(result: dict) -> str:
    m, c = result["meta"], result["meta"]["config"]
    lines = [
        f"# recur bench --case deploy: cpu ({m['device_name']})",
        "",
        f"Unidirectional CTC models, {c['num_layers']} layers, encoders of ~{c['param_budget'] / 1e6:g}M parameters, "
        f"{c['feat_dim']} mel bins, frame stacking by {c['subsampling']}, random weights and features; "
        f"{c['seconds']:g} s utterance; one thread (torch.set_num_threads(1), onnxruntime intra-op 1); median of "
        f"{m['repeats']} passes. torch {m['torch']}, onnxruntime {m['onnxruntime']}; load average "
        f"{m['load_average_start'][0]:.2f} at start. Started {m['started_utc']}.",
        "",
        "| model | H | params | runtime | offline RTF | chunk | chunk median ms | chunk p95 ms | stream RTF "
        "| model.onnx MB |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        size = f"{r['onnx_bytes'] / 1e6:.2f}" if r.get("onnx_bytes") else ""
        lines.append(
            f"| {r['model']} | {r['hidden']} | {r['params'] / 1e6:.2f}M | {r['runtime']} | {r['offline_rtf']:.4f} | "
            f"{r['chunk_ms']:.0f} ms | {r['chunk_median_ms']:.3f} | {r['chunk_p95_ms']:.3f} | {r['stream_rtf']:.4f} "
            f"| {size} |"
        )
    if result["forms"]:
        f0 = result["forms"][0]
        lines += [
            "",
            f"## The IndRNN recurrence in ONNX (res_indrnn, {f0['chunk_ms']:.0f} ms chunks)",
            "",
            "| form | chunk median ms | chunk p95 ms | stream RTF | offline RTF | model.onnx MB |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in result["forms"]:
            offline = "fixed length" if r["offline_rtf"] is None else f"{r['offline_rtf']:.4f}"
            lines.append(
                f"| {r['indrnn_form']} | {r['chunk_median_ms']:.3f} | {r['chunk_p95_ms']:.3f} | {r['stream_rtf']:.4f} "
                f"| {offline} | {r['onnx_bytes'] / 1e6:.2f} |"
            )
        lines += ["", "scan: ONNX Scan over time (kept: any length, fastest of the forms that take any length); "
                  "loop: ONNX Loop with a Gather per step; rnn: ONNX RNN operator with recurrent matrix diag(u); "
                  "unrolled: one node set per frame (one chunk length only)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def write_deploy_results(result: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "bench_cpu_deploy.json", out / "bench_cpu_deploy.md"
    write_json(json_path, result)
    write_text(md_path, deploy_markdown(result))
    return json_path, md_path

