"""An exported model folder (``recur export``) run with onnxruntime: features, log-probabilities, text.

    from toolkit.deploy import Recognizer, read_audio
    rec = Recognizer("deploy/res_indrnn")
    wave, _ = read_audio("a.wav", rec.sampling_rate)
    print(rec.transcribe(wave))                       # greedy
    beam = rec.decoder(BeamOptions(beam=16))          # with the folder's lexicon and LM, if it has them
    print(rec.transcribe(wave, decoder=beam))
    stream = rec.stream()                             # chunk by chunk (unidirectional models)
    for chunk in chunks: stream.accept(chunk); print(stream.partial)
    print(stream.finish())
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from toolkit.errors import UserError

from .beam import BeamOptions, BeamSearch
from .features import Fbank, FbankStream
from .tokens import TokenTable, greedy_ids, lower_blank

FORMAT = "recur-onnx"
FORMAT_VERSION = 1


def read_config(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    path = folder / "config.json"
    if not (folder / "model.onnx").is_file() or not path.is_file():
        raise UserError(f"{folder} is not an export folder (no model.onnx and config.json): see recur export")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is unreadable ({err.msg})") from None
    if config.get("format") != FORMAT or int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise UserError(f"{path}: not a {FORMAT} v{FORMAT_VERSION} export (re-export the model with this recur)")
    return config


class Recognizer:
    """The model in ``folder`` on onnxruntime's CPU provider with ``threads`` threads (1: one core).

    ``sampling_rate`` is the rate it wants audio at; ``form`` is ``"stream"`` (unidirectional: chunk by
    chunk, or whole utterances) or ``"utterance"`` (bidirectional or conv front end: whole utterances).
    """

    def __init__(self, folder: str | os.PathLike, threads: int = 1) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        self.config = read_config(folder)
        c = self.config
        self.tokens = TokenTable.load(self.folder, c)
        f = c["features"]
        self.fbank = Fbank(f["num_mel_bins"], f["sampling_rate"], f["frame_length_ms"], f["frame_shift_ms"],
                           f["preemphasis"], f["low_freq"], f["high_freq"])  # fmt: skip
        self.sampling_rate = int(f["sampling_rate"])
        self.form = c["form"]
        self.factor = int(c["subsampling"]["factor"])
        self.feat_dim = int(f["num_mel_bins"])
        self.mean = np.asarray(c["cmvn"]["mean"], dtype=np.float32)
        self.states = c["io"]["states"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(self.folder / "model.onnx"), options,
                                            providers=["CPUExecutionProvider"])  # fmt: skip

    def __repr__(self) -> str:
        m = self.config["model"]
        return (f"Recognizer({self.folder}: {m['encoder']} CTC over {self.tokens.kind} tokens, {self.form} form, "
                f"{self.sampling_rate} Hz, {self.feat_dim} mel bins)")  # fmt: skip

    # --- decoding -------------------------------------------------------------------------------
    def decoder(self, options: BeamOptions | None = None, lm: str | os.PathLike | None = None,
                lexicon: str | os.PathLike | None = None) -> BeamSearch | None:
        """The beam search for ``options`` (None or beam 0: greedy, returns None). Without ``lm`` /
        ``lexicon`` it uses the folder's own (``recur export --lm``), if it has them."""
        if options is None or options.beam <= 0:
            return None
        d = self.config.get("decoding") or {}
        if lm is None and lexicon is None:
            lm = self.folder / d["lm"] if d.get("lm") else None
            lexicon = self.folder / d["lexicon"] if d.get("lexicon") else None
        if self.tokens.kind == "byte":
            raise UserError("beam search over byte tokens is not supported; decode greedily (no --beam)")
        word_sep = None if self.tokens.kind == "word" else " "
        return BeamSearch(self.tokens.symbols, options, word_sep, lexicon, lm)

    def text(self, log_probs: np.ndarray, decoder: BeamSearch | None = None, blank_penalty: float = 0.0) -> str:
        """Transcript of one utterance's ``log_probs (T, V)``: greedy, or ``decoder``'s beam search."""
        log_probs = lower_blank(log_probs, blank_penalty)
        if decoder is not None:
            return decoder(log_probs).strip()
        return self.tokens.decode(greedy_ids(log_probs)).strip()

    # --- the model --------------------------------------------------------------------------------
    def features(self, wave: np.ndarray, sampling_rate: int | None = None) -> np.ndarray:
        """Fbank features (frames, bins) of a mono wave at ``sampling_rate`` (default: the model's)."""
        from .audio import resample

        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim == 2:
            wave = wave.mean(0)  # (channels, samples)
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            wave = resample(wave, sampling_rate, self.sampling_rate)
        return self.fbank(wave)

    def initial_states(self, batch: int = 1) -> dict[str, np.ndarray]:
        return {s["input"]: np.zeros((s["shape"][0], batch, s["shape"][2]), np.float32) for s in self.states}

    def end_padding(self, context_frames: int) -> np.ndarray:
        """Frames that complete the last stack: rows equal to the CMVN mean normalise to the zeros the
        offline model pads with."""
        n = (-context_frames) % self.factor
        return np.broadcast_to(self.mean, (1, n, self.feat_dim)).astype(np.float32)

    def log_probs(self, feats: np.ndarray) -> np.ndarray:
        """One utterance's raw fbank ``(T, F)`` -> log-probabilities ``(ceil(T / factor), V)``."""
        feats = np.asarray(feats, dtype=np.float32)[None]
        if self.form == "utterance":
            lengths = np.array([feats.shape[1]], dtype=np.int64)
            return self.session.run(["log_probs"], {"feats": feats, "feat_lengths": lengths})[0][0]
        feats = np.concatenate([feats, self.end_padding(feats.shape[1])], 1)
        inputs = {"feats": feats, "context": np.zeros((1, 0, self.feat_dim), np.float32), **self.initial_states()}
        return self.session.run(["log_probs"], inputs)[0][0]

    def transcribe(self, wave: np.ndarray, sampling_rate: int | None = None, decoder: BeamSearch | None = None,
                   blank_penalty: float = 0.0) -> str:
        """Transcript of a mono wave (float in [-1, 1]) at ``sampling_rate`` (default: the model's)."""
        feats = self.features(wave, sampling_rate)
        if feats.shape[0] == 0:
            return ""
        return self.text(self.log_probs(feats), decoder, blank_penalty)

    def chunk_samples(self, chunk_ms: float) -> int:
        """Samples in a chunk of ``chunk_ms`` milliseconds at the model's rate (at least one)."""
        return max(1, round(self.sampling_rate * chunk_ms / 1000.0))

    def stream(self, decoder: BeamSearch | None = None, blank_penalty: float = 0.0) -> Stream:
        """A new stream (greedy, or incremental beam search with ``decoder``: one stream per decoder)."""
        return Stream(self, decoder, blank_penalty)


class Stream:
    """One utterance fed chunk by chunk: ``accept(chunk)`` takes samples (float in [-1, 1], the model's
    rate), ``partial`` is the text so far, ``finish()`` the final text. Its whole state is the feature
    remainder, the frames not yet stacked, the encoder state and the decoder's: the concatenated
    log-probabilities and the transcript equal the offline ones, whatever the chunk sizes."""

    def __init__(self, recognizer: Recognizer, decoder: BeamSearch | None = None, blank_penalty: float = 0.0):
        if recognizer.form != "stream":
            raise UserError(
                f"{recognizer.folder} holds a whole-utterance model (bidirectional or conv front end); it cannot "
                "stream: decode whole files"
            )
        self.rec = recognizer
        self.features = FbankStream(recognizer.fbank)
        self.context = np.zeros((1, 0, recognizer.feat_dim), np.float32)
        self.states = recognizer.initial_states(1)
        self.decoder = decoder
        self.blank_penalty = blank_penalty
        self.chunks: list[np.ndarray] = []
        self.finished = False
        if decoder is not None:
            decoder.begin()

    def _run(self, feats: np.ndarray) -> None:
        feats = np.asarray(feats, dtype=np.float32).reshape(1, -1, self.rec.feat_dim)
        if self.context.shape[1] + feats.shape[1] < self.rec.factor:
            self.context = np.concatenate([self.context, feats], 1)
            return
        outputs = self.rec.session.run(None, {"feats": feats, "context": self.context, **self.states})
        log_probs = lower_blank(outputs[0][0], self.blank_penalty)
        self.context = outputs[1]
        self.states = {s["input"]: v for s, v in zip(self.rec.states, outputs[2:], strict=True)}
        self.chunks.append(log_probs)
        if self.decoder is not None:
            self.decoder.step(log_probs)

    def accept(self, chunk: np.ndarray) -> None:
        """Take the next samples (mono, at ``recognizer.sampling_rate``); int16 samples are scaled by 1/32768."""
        if self.finished:
            raise UserError("this stream is finished; start a new one with recognizer.stream()")
        chunk = np.asarray(chunk)
        if chunk.dtype == np.int16:
            chunk = chunk.astype(np.float32) / 32768.0
        feats = self.features.accept(chunk)
        if feats.shape[0]:
            self._run(feats)

    @property
    def log_probs(self) -> np.ndarray:
        """Every output frame so far, (T', V) (after the blank penalty)."""
        if not self.chunks:
            return np.zeros((0, len(self.rec.tokens.symbols)), np.float32)
        return np.concatenate(self.chunks, 0)

    @property
    def partial(self) -> str:
        """The transcript so far (the beam search's best hypothesis, or greedy)."""
        if self.decoder is not None:
            return self.decoder.best().strip() if self.chunks else ""
        return self.rec.tokens.decode(greedy_ids(self.log_probs)).strip()

    def finish(self) -> str:
        """Flush the last frames and return the final transcript."""
        if not self.finished:
            if self.context.shape[1]:
                pad = self.rec.end_padding(self.context.shape[1])
                self._run(pad)
            self.finished = True
            if self.decoder is not None:
                self.text = self.decoder.end().strip() if self.chunks else ""
            else:
                self.text = self.rec.tokens.decode(greedy_ids(self.log_probs)).strip()
        return self.text
