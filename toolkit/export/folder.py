"""``recur export``: a trained CTC model as a self-contained deployment folder.

    DIR/model.onnx     features in, log-probabilities out (streaming form for unidirectional models)
    DIR/tokens.txt     ``symbol id`` per output (``<space>`` for the space character)
    DIR/config.json    features, CMVN, subsampling, tokenizer, model, the graph's inputs/outputs/states,
                       the decoding files, and the equality check made at export time
    DIR/lexicon.txt    (with --lm or --lexicon) words spelled in the model's tokens
    DIR/lm.arpa|lm.bin (with --lm) the KenLM n-gram model for beam search

``toolkit.deploy.Recognizer`` runs it with numpy and onnxruntime only.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from toolkit.deploy.model import FORMAT, FORMAT_VERSION
from toolkit.deploy.tokens import SPECIALS, write_tokens
from toolkit.errors import UserError
from toolkit.nn.subsampling import FrameStack

from .graph import DEFAULT_INDRNN_FORM, EXPORTABLE, INDRNN_FORMS, not_exportable
from .onnx import OPSET, to_onnx


@dataclass
class ExportResult:
    folder: Path
    form: str
    indrnn_form: str | None
    onnx_bytes: int
    max_abs_diff: float | None  # exported vs PyTorch log-probabilities on random features (None: not checked)
    chunked_max_abs_diff: float | None


def resolve_task(model):
    """A ``CTCTask`` from a path (experiment folder or .ckpt), an ``AcousticModel`` or a task."""
    from toolkit.api import AcousticModel, load_task
    from toolkit.tasks.asr import CTCTask

    if isinstance(model, AcousticModel):
        model = model.task
    if isinstance(model, (str, os.PathLike)):
        model = load_task(model, "cpu", expect="asr")
    if not isinstance(model, CTCTask):
        raise UserError(f"only a single CTC acoustic model exports, not a {type(model).__name__}")
    return model.to("cpu").eval()


def symbols_of(tokenizer) -> list[str]:
    """The text of every output id."""
    if tokenizer.kind == "byte":
        return list(SPECIALS) + [f"<0x{b:02X}>" for b in range(256)]
    return list(tokenizer.symbols)


def _decoding_files(task, out: Path, lm: str | None, lexicon: str | None) -> dict:
    """Copy (or derive) the lexicon and copy the KenLM model into ``out``; their names for config.json."""
    from toolkit.api.decoding import _is_arpa, arpa_words, is_recur_lm, spelling
    from toolkit.decode.beam import write_lexicon

    found: dict[str, str | None] = {"lm": None, "lexicon": None}
    if not lm and not lexicon:
        return found
    tok = task.tokenizer
    if tok.kind == "byte":
        raise UserError("beam search over byte tokens is not supported: export without --lm / --lexicon")
    for flag, path in (("--lm", lm), ("--lexicon", lexicon)):
        if path and not Path(path).exists():
            raise UserError(f"{flag} {path}: no such file or folder")
    if lm:
        if is_recur_lm(lm):
            raise UserError(f"--lm {lm}: a recur LM needs PyTorch and is not exported; give a KenLM ARPA or .bin file")
        binary = Path(lm).suffix == ".bin"
        if not binary and not _is_arpa(Path(lm)):
            raise UserError(f"--lm {lm}: not an ARPA language model (no \\data\\ header) or a KenLM .bin")
        name = "lm.bin" if binary else "lm.arpa"
        shutil.copyfile(lm, out / name)
        found["lm"] = name
    if lexicon:
        shutil.copyfile(lexicon, out / "lexicon.txt")
        found["lexicon"] = "lexicon.txt"
    elif lm and Path(lm).suffix != ".bin":
        # as recur decode derives it: the LM's words, spelled in the model's tokens
        write_lexicon(arpa_words(Path(lm)), out / "lexicon.txt", spelling(tok, symbols_of(tok)))
        found["lexicon"] = "lexicon.txt"
    return found


def _check(task, data: bytes, form: str, io_spec: dict, frames: int = 157, seed: int = 0) -> tuple[float, float | None]:
    """Max |exported - PyTorch| log-probability on random raw features (offline, and chunk by chunk)."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feat_dim = int(task.cmvn.mean.numel())
    gen = torch.Generator().manual_seed(seed)
    feats = task.cmvn.mean + task.cmvn.std * torch.randn(1, frames, feat_dim, generator=gen)
    with torch.no_grad():
        ref = task(feats, torch.tensor([frames]))[0][0].numpy()
    x = feats.numpy().astype(np.float32)
    if form == "utterance":
        got = session.run(["log_probs"], {"feats": x, "feat_lengths": np.array([frames], np.int64)})[0][0]
        return float(np.abs(got - ref).max()), None
    k = task.frontend.factor
    mean = task.cmvn.mean.numpy().astype(np.float32)
    states = {s["input"]: np.zeros((s["shape"][0], 1, s["shape"][2]), np.float32) for s in io_spec["states"]}

    def run(feats, context, states):
        out = session.run(None, {"feats": feats, "context": context, **states})
        return out[0][0], out[1], {s["input"]: v for s, v in zip(io_spec["states"], out[2:], strict=True)}

    pad = np.broadcast_to(mean, (1, (-frames) % k, feat_dim)).astype(np.float32)
    whole, _, _ = run(np.concatenate([x, pad], 1), np.zeros((1, 0, feat_dim), np.float32), states)
    parts, context, pos = [], np.zeros((1, 0, feat_dim), np.float32), 0
    for size in [7, 1, 16, 2, 30] * frames:
        if pos >= frames:
            break
        chunk, pos = x[:, pos : pos + size], pos + size
        if context.shape[1] + chunk.shape[1] < k:
            context = np.concatenate([context, chunk], 1)
            continue
        lp, context, states = run(chunk, context, states)
        parts.append(lp)
    if context.shape[1]:
        lp, _, _ = run(np.broadcast_to(mean, (1, k - context.shape[1], feat_dim)).astype(np.float32), context, states)
        parts.append(lp)
    chunked = np.concatenate(parts, 0)
    return float(np.abs(whole - ref).max()), float(np.abs(chunked - ref).max())


def export_model(model, out_dir: str | os.PathLike, form: str | None = None,
                 indrnn_form: str = DEFAULT_INDRNN_FORM, lm: str | None = None, lexicon: str | None = None,
                 check: bool = True) -> ExportResult:
    """Write the deployment folder of ``model`` (experiment folder, .ckpt, ``AcousticModel`` or ``CTCTask``).

    ``form``: ``"stream"`` (default for unidirectional frame-stacking models) or ``"utterance"`` (default,
    and the only choice, for bidirectional or conv-subsampled ones). ``indrnn_form``: how an IndRNN
    recurrence is written (``toolkit.export.graph.INDRNN_FORMS``). ``lm`` (a KenLM ARPA or .bin file) and
    ``lexicon`` are copied in for beam search; with an ARPA LM and no lexicon, the lexicon is derived from
    the LM's words as ``recur decode`` does. ``check`` compares the exported log-probabilities with
    PyTorch's on random features (needs onnxruntime) and records the difference in config.json.
    """
    task = resolve_task(model)
    name = task.hparams.get("encoder", getattr(task.encoder, "layer_name", "?"))
    if getattr(task.encoder, "layer_name", None) not in EXPORTABLE:
        raise not_exportable(name)
    if indrnn_form not in INDRNN_FORMS or indrnn_form == "unrolled":
        raise UserError(f"--indrnn-form must be one of {', '.join(f for f in INDRNN_FORMS if f != 'unrolled')}")
    streamable = not task.encoder.bidirectional and isinstance(task.frontend, FrameStack)
    form = form or ("stream" if streamable else "utterance")
    if form not in ("stream", "utterance"):
        raise UserError(f"--form must be stream or utterance, not {form!r}")
    if form == "stream" and not streamable:
        why = "bidirectional" if task.encoder.bidirectional else "conv-subsampled"
        raise UserError(f"a {why} model cannot stream: export it with --form utterance")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    data, io_spec = to_onnx(task, form, indrnn_form)
    (out / "model.onnx").write_bytes(data)
    tok = task.tokenizer
    symbols = symbols_of(tok)
    if len(symbols) != task.output.out_features:
        raise UserError(f"the tokenizer has {len(symbols)} symbols but the model {task.output.out_features} outputs")
    write_tokens(symbols, out / "tokens.txt")
    decoding = _decoding_files(task, out, lm, lexicon)
    diff = chunked = None
    if check:
        try:
            diff, chunked = _check(task, data, form, io_spec)
        except ImportError:
            pass  # no onnxruntime here: the folder is still complete
    h = task.hparams
    k = task.frontend.factor
    is_indrnn = name in ("indrnn", "res_indrnn")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "form": form,
        "opset": OPSET,
        "model": {
            "encoder": name,
            "hidden_size": int(task.encoder.hidden_size),
            "num_layers": int(task.encoder.num_layers),
            "bidirectional": bool(task.encoder.bidirectional),
            "encoder_opts": dict(h.get("encoder_opts") or {}),
            "indrnn_form": indrnn_form if is_indrnn else None,
            "recurrence": EXPORTABLE[name] if not is_indrnn else {
                "scan": "h = act(W x + b + u * h) as an ONNX Scan over time",
                "loop": "h = act(W x + b + u * h) as an ONNX Loop over time",
                "rnn": "h = act(W x + b + diag(u) h) as the ONNX RNN operator",
            }[indrnn_form],
            "params": int(sum(p.numel() for p in task.parameters())),
            "output_frame_shift_s": float(h.get("frame_shift_s", 0.01)) * k,
        },
        "features": {
            "kind": "kaldi_fbank",
            "sampling_rate": int(task.sampling_rate),
            "num_mel_bins": int(task.cmvn.mean.numel()),
            "frame_length_ms": 25.0,
            "frame_shift_ms": 10.0,
            "window": "povey",
            "preemphasis": 0.97,
            "remove_dc_offset": True,
            "dither": 0.0,
            "energy_floor": 0.0,
            "snip_edges": True,
            "low_freq": 20.0,
            "high_freq": 0.0,
            "wave_scale": 32768.0,
            "log": "natural log of each mel energy, floored at float32 epsilon",
        },
        "cmvn": {
            "applied_in": "model",
            "note": "(feats - mean) / std is the first operation of model.onnx: feed raw fbank",
            "mean": [float(v) for v in task.cmvn.mean],
            "std": [float(v) for v in task.cmvn.std],
        },
        "subsampling": {
            "kind": h.get("subsampling", "stack"),
            "factor": int(k),
            "context": "raw fbank frames not yet stacked, 0..factor-1 of them (stream form)" if form == "stream"
            else None,
            "end_of_stream": "pad the context to factor frames with rows equal to cmvn.mean, run once more"
            if form == "stream" else None,
        },  # fmt: skip
        "tokenizer": {
            "file": "tokens.txt",
            "kind": tok.kind,
            "lowercase": bool(tok.lowercase),
            "remove_punct": bool(tok.remove_punct),
            "vocab_size": len(symbols),
            "blank_id": int(tok.blank_id),
            "unk_id": int(tok.unk_id),
            "eos_id": int(tok.eos_id),
            "space_symbol": "<space>",
        },
        "io": io_spec,
        "decoding": {**decoding, "word_sep": None if tok.kind == "word" else " "},
        "check": {
            "input": "157 random frames around the CMVN mean; stream form also fed in chunks of 7, 1, 16, 2, 30",
            "max_abs_diff_log_probs": diff,
            "chunked_max_abs_diff_log_probs": chunked,
        },
    }
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return ExportResult(out, form, config["model"]["indrnn_form"], len(data), diff, chunked)
