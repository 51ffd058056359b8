"""Streaming CTC recognition: audio fed in chunks of any size gives the frames, log-probabilities and
transcript that the offline decode gives for the whole signal (unidirectional models).

    rec = StreamRecognizer(task)               # toolkit.load(...).stream_recognizer(beam=8) builds one
    stream = rec.stream("call-1")
    for chunk in chunks:                       # 1 sample to many seconds, at rec.sampling_rate
        stream.accept(chunk)
        print(stream.partial)
    print(stream.finish())

A chunk goes through the offline chain, with whatever each stage needs from earlier chunks carried in
the stream's :class:`StreamState`:

* Kaldi fbank (25 ms windows every 10 ms, ``snip_edges``): frame i covers samples
  [i * shift, i * shift + window); the samples after the last whole frame wait for the next chunk;
* global CMVN (per frame);
* frame stacking: up to factor - 1 frames wait; at the end of the stream the last group is padded with
  zero frames, as the offline batch pads it; strided convolutions: each conv keeps the one or two input
  frames its next output reads on the left (a zero frame before the first, as the offline padding), and
  an output waits until the frame on its right has come (at the end, the offline zero padding);
* the encoder, its state carried from chunk to chunk (the layer contract: chunks with the carried state
  equal one pass), then the output layer and log-softmax;
* decoding: greedy CTC (carrying the previous frame's token), or flashlight's beam search through its
  incremental interface (``decode_begin`` / ``decode_step`` / ``decode_end``) with the options of the
  offline search (lexicon, KenLM or a recur LM fused, blank penalty).

Exactness: the fbank frames and log-probabilities equal the offline ones to float32 rounding (matrix
products over a different number of rows round differently in the last bit; the tests allow 1e-5 of
the values' scale), and the transcripts are the offline ones. Audio must come at the model's sampling
rate (a stream at another rate is refused; ``toolkit.data.audio.read_audio(path, rate)`` resamples a
file as the offline decode does).

The work per chunk depends on the chunk only, and a stream's buffers stay bounded (see
:meth:`Stream.buffer_sizes`): the beam search keeps the last ``beam_history`` to 2 x ``beam_history``
frames of its lattice and commits the best path before them (the transcript is then exactly the
offline one whenever every hypothesis still alive agrees on what lies more than ``beam_history``
frames back, as they do in practice; ``beam_history=None`` keeps the whole lattice, exact always).
A recur LM fused without a lexicon keeps only the LM states live hypotheses hold; fused with a lexicon
(a word LM) its cache grows with the words the stream explores, until the stream ends.

:class:`StreamBatch` advances many streams together, one batch through the encoder per round, each
with its own state, each starting and ending when it likes (icefall's ``Stream`` pattern).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from toolkit.data.features import Fbank
from toolkit.errors import UserError
from toolkit.nn.base import State, map_state
from toolkit.nn.subsampling import ConvSubsampling, FrameStack

from .beam import UNK_WORD, WORD_SEP, CTCBeamSearch
from .fusion_lm import FlashlightLMBridge
from .transcribe import lower_blank

DEFAULT_BEAM_HISTORY = 400  # decoder frames kept in the beam search's lattice (x 2 at most)


# --- pieces of a stream's state -------------------------------------------------------------------


class GreedyDecoding:
    """Best-path CTC, one frame at a time: argmax per frame, repeats merged (the previous frame's
    token is carried across chunks), blanks removed."""

    def __init__(self, tokenizer, blank: int = 0) -> None:
        self.tokenizer, self.blank = tokenizer, blank
        self.prev: int | None = None
        self.ids: list[int] = []
        self._text: tuple[int, str] | None = None

    def step(self, log_probs: Tensor) -> None:
        for best in log_probs.argmax(dim=-1).tolist():
            if best != self.prev and best != self.blank:
                self.ids.append(best)
            self.prev = best

    @property
    def partial(self) -> str:
        if self._text is None or self._text[0] != len(self.ids):
            self._text = (len(self.ids), self.tokenizer.decode(self.ids).strip())
        return self._text[1]

    def finish(self) -> str:
        return self.partial

    def sizes(self) -> dict[str, int]:
        return {}


class _StreamingLMBridge(FlashlightLMBridge):
    """A recur LM for one stream's beam search whose cache forgets LM states no hypothesis holds any
    more: the offline bridge keeps every state it computed until the utterance ends, which an endless
    stream cannot afford.

    Without a lexicon and with ``beam_tokens >= 3``, flashlight scores, on every frame, each live
    hypothesis followed by at least one token (of three tokens at most one is the blank and one
    repeats the last token), so a state not looked up on the last frame is held by no hypothesis and
    can go. With a lexicon (a word LM, scored at word ends only) nothing is evicted.
    """

    def __init__(self, template: FlashlightLMBridge, evict: bool) -> None:
        super().__init__(template.lm, template.to_lm, template.end_id)
        self.evict_old = evict
        self.frame = 0
        self.used: dict[Any, int] = {}

    def start(self, start_with_nothing: bool):
        self.used.clear()
        state = super().start(start_with_nothing)
        self.used[state] = self.frame
        return state

    def score(self, state, usr_token_idx: int):
        self.used[state] = self.frame
        child, value = super().score(state, usr_token_idx)
        self.used[child] = self.frame
        return child, value

    def finish(self, state):
        self.used[state] = self.frame
        return super().finish(state)

    def evict(self) -> None:
        """Drop the states not used on the last frame decoded (call between frames)."""
        if not self.evict_old:
            return
        stale = [s for s, f in self.used.items() if f < self.frame - 1]
        for s in stale:
            del self.used[s]
            self.cache.pop(s, None)


class BeamFactory:
    """Flashlight decoders for many streams, configured exactly as an offline :class:`CTCBeamSearch`
    (``template``), sharing what can be shared: the KenLM model, the lexicon trie."""

    def __init__(self, template: CTCBeamSearch) -> None:
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconDecoderOptions,
            LexiconFreeDecoderOptions,
            SmearingMode,
            Trie,
        )
        from flashlight.lib.text.dictionary import load_words

        self.template = template
        decoder = template.decoder  # torchaudio's CTCDecoder
        self.tokens = template.tokens
        self.word_dict = decoder.word_dict
        self.blank = decoder.blank
        self.sil = decoder.tokens_dict.get_index(WORD_SEP)
        self.lm = decoder.lm  # KenLM, ZeroLM or the template's bridge
        self.bridge = template.bridge
        c = template.config
        has_lm = template.bridge is not None or type(self.lm).__name__ != "ZeroLM"
        n_tokens = decoder.tokens_dict.index_size()
        self.beam_tokens = c.beam_size_token or n_tokens
        common = dict(
            beam_size=c.beam_size,
            beam_size_token=self.beam_tokens,
            beam_threshold=c.beam_threshold,
            lm_weight=c.lm_weight if has_lm else 0.0,
        )
        self.trie = None
        if template.lexicon is not None:
            self.options = LexiconDecoderOptions(
                **common, word_score=c.word_score, unk_score=float("-inf"), sil_score=0.0, log_add=False,
                criterion_type=CriterionType.CTC,
            )  # fmt: skip
            # torchaudio's trie: each spelling under its word, with the word's unigram LM score, smeared
            trie = Trie(n_tokens, self.sil)
            start = self.lm.start(False)
            for word, spellings in load_words(str(template.lexicon)).items():
                index = self.word_dict.get_index(word)
                _, score = self.lm.score(start, index)
                for spelling in spellings:
                    trie.insert([decoder.tokens_dict.get_index(t) for t in spelling], index, score)
            trie.smear(SmearingMode.MAX)
            self.trie = trie
            self.unk = self.word_dict.get_index(UNK_WORD)
        else:
            self.options = LexiconFreeDecoderOptions(
                **common, sil_score=0.0, log_add=False, criterion_type=CriterionType.CTC
            )

    def new(self):
        """(flashlight decoder, its LM): a fresh decoder for one stream."""
        from flashlight.lib.text.decoder import LexiconDecoder, LexiconFreeDecoder

        lm = self.lm
        if self.bridge is not None:
            lm = _StreamingLMBridge(self.bridge, evict=self.trie is None and self.beam_tokens >= 3)
        if self.trie is not None:
            return LexiconDecoder(self.options, self.trie, lm, self.sil, self.blank, self.unk, [], False), lm
        return LexiconFreeDecoder(self.options, lm, self.sil, self.blank, []), lm


class BeamDecoding:
    """One stream's beam search through flashlight's incremental interface.

    The lattice holds the frames since the last commit; once it is longer than 2 x ``history`` frames,
    the best path up to ``history`` frames back is committed (``get_best_hypothesis`` /
    ``prune``), which bounds memory. ``history=None`` never prunes.
    """

    def __init__(self, factory: BeamFactory, history: int | None = DEFAULT_BEAM_HISTORY) -> None:
        self.factory = factory
        self.history = history
        self.decoder, self.lm = factory.new()  # the LM must live as long as the decoder
        self.bridge = self.lm if isinstance(self.lm, _StreamingLMBridge) else None
        self.decoder.decode_begin()
        self.buffered = 0  # frames decoded since the last prune
        self.committed: list[int] = []  # collapsed tokens (repeats merged, blanks out) of committed frames
        self.words: list[int] = []
        self.last: int | None = None  # the last committed frame's token (repeats merge across a commit)
        self.started = False  # the first frame (the initial silence) already committed
        self.final: str | None = None
        self._partial: tuple[int, str] | None = None
        self.width = len(factory.tokens)

    def step(self, log_probs: Tensor) -> None:
        emissions = log_probs.detach().float().cpu()
        if emissions.shape[-1] < self.width:  # the silence token the model does not have (as offline)
            pad = emissions.new_full((emissions.shape[0], self.width - emissions.shape[-1]), -1e4)
            emissions = torch.cat([emissions, pad], dim=-1)
        emissions = emissions.contiguous()
        steps, width = emissions.shape
        if self.bridge is None:
            self.decoder.decode_step(emissions.data_ptr(), steps, width)
        else:  # one frame at a time, so the LM cache can forget what the frame left behind
            row = width * emissions.element_size()
            for t in range(steps):
                self.decoder.decode_step(emissions.data_ptr() + t * row, 1, width)
                self.bridge.frame += 1
                self.bridge.evict()
        self.buffered += steps
        self._partial = None
        if self.history is not None and self.buffered > 2 * self.history:
            best = self.decoder.get_best_hypothesis(self.history)
            if len(best.tokens) >= 2:
                self._commit(best.tokens, best.words)
                self.decoder.prune(self.history)
                self.buffered -= len(best.tokens) - 1

    def _collapse(self, tokens: Sequence[int], words: Sequence[int], last: int | None) -> tuple[list, list, Any]:
        start = 1 if self.started else 0  # frame 0 of the lattice is the last committed frame
        out, blank = [], self.factory.blank
        for t in tokens[start:]:
            if t != last and t != blank:
                out.append(t)
            last = t
        return out, [w for w in words[start:] if w >= 0], last

    def _commit(self, tokens: Sequence[int], words: Sequence[int]) -> None:
        out, ws, self.last = self._collapse(tokens, words, self.last)
        self.committed += out
        self.words += ws
        self.started = True

    def _text(self, tokens: Sequence[int], words: Sequence[int]) -> str:
        out, ws, _ = self._collapse(tokens, words, self.last)
        hyp = SimpleNamespace(
            tokens=torch.tensor(self.committed + out, dtype=torch.long),
            words=[self.factory.word_dict.get_entry(w) for w in self.words + ws],
        )
        return self.factory.template._text(hyp).strip()

    @property
    def partial(self) -> str:
        if self.final is not None:
            return self.final
        if self._partial is None:
            best = self.decoder.get_best_hypothesis(0) if self.buffered else None
            text = self._text(best.tokens, best.words) if best is not None and len(best.tokens) else self._text([], [])
            self._partial = (self.buffered, text)
        return self._partial[1]

    def finish(self) -> str:
        if self.final is None:
            self.decoder.decode_end()
            hyps = self.decoder.get_all_final_hypothesis()
            self.final = self._text(hyps[0].tokens, hyps[0].words) if hyps else ""
            if self.bridge is not None:
                self.bridge.cache.clear()
                self.bridge.used.clear()
        return self.final

    def sizes(self) -> dict[str, int]:
        out = {"lattice_frames": self.buffered}
        if self.bridge is not None:
            out["lm_cache"] = len(self.bridge.cache)
        return out


class FrameFbank:
    """Kaldi fbank of whole frames from many streams at once: the steps of torchaudio's
    ``compliance.kaldi.fbank`` with :class:`toolkit.data.features.Fbank`'s settings, in the same order,
    with the window function and the mel filters built once (``kaldi.fbank`` rebuilds both on every
    call, which costs more than the frames of a 160 ms chunk).

    ``frames (N, window)``: each row a frame's samples (floats in [-1, 1]) -> ``(N, num_mel_bins)``.
    Equal to the offline front end to float32 rounding (the tests check it)."""

    def __init__(self, fbank: Fbank) -> None:
        from torchaudio.compliance import kaldi

        if fbank.dither:
            raise ValueError("streaming fbank: dither must be 0 (a decoder's front end is deterministic)")
        self.window = fbank.window
        self.padded = kaldi._next_power_of_2(self.window)  # round_to_power_of_two
        self.povey = kaldi._feature_window_function(kaldi.POVEY, self.window, 0.42, torch.device("cpu"), torch.float32)
        mel, _ = kaldi.get_mel_banks(fbank.num_mel_bins, self.padded, float(fbank.sampling_rate), 20.0, 0.0,
                                     100.0, -500.0, 1.0)  # fmt: skip
        self.mel_t = F.pad(mel.to(torch.float32), (0, 1), mode="constant", value=0).T
        self.eps = kaldi._get_epsilon(torch.device("cpu"), torch.float32)
        self.num_mel_bins = fbank.num_mel_bins

    def __call__(self, frames: Tensor) -> Tensor:
        x = frames * 32768.0  # as Fbank scales the wave (elementwise: before or after framing alike)
        x = x - torch.mean(x, dim=1).unsqueeze(1)  # remove_dc_offset
        # preemphasis, x[j] - 0.97 x[j - 1] with x[-1] = x[0] (kaldi's replicate padding), in place
        x[:, 1:] -= 0.97 * x[:, :-1]
        x[:, 0] -= 0.97 * x[:, 0]
        x.mul_(self.povey)
        spectrum = torch.fft.rfft(x, n=self.padded).abs().pow(2.0)  # zero-padded to a power of two
        return torch.max(torch.mm(spectrum, self.mel_t), self.eps).log()


@dataclass
class StreamState:
    """Everything a stream carries from one chunk to the next, in one object.

    samples: the samples from the next frame's start on (fewer than one window);
    stack: frame stacking's waiting (normalised) frames, fewer than the factor;
    conv: per strided convolution, its input frames from the one its next output reads first
        (1 or 2 frames; at the start a zero frame, the offline padding);
    encoder: the encoder's state (a batch of one, or its row of the last batch's: see
        :meth:`StreamRecognizer.encode`); decoder: greedy or beam decoding state;
    counters: samples accepted, fbank frames, encoder frames.
    """

    samples: Tensor
    stack: Tensor | None
    conv: list[Tensor] | None
    encoder: Any
    decoder: GreedyDecoding | BeamDecoding
    num_samples: int = 0
    num_frames: int = 0
    num_steps: int = 0


# --- the recogniser ---------------------------------------------------------------------------------

RESCORING_REFUSAL = (
    "streaming decodes greedily or with a beam search (lexicon, KenLM or a recur LM fused); n-best rescoring "
    "(--rescore-lm) re-ranks whole utterances: use recur decode for it"
)


def check_streamable(model) -> None:
    """Refuse, in one line, a model that cannot stream: an ensemble, a bidirectional encoder, a front end
    this module does not know, a model in training mode."""
    needed = ("cmvn", "frontend", "encoder", "output", "tokenizer")
    if not all(hasattr(model, a) for a in needed):
        raise UserError(
            f"streaming needs one CTC model, not a {type(model).__name__} (an ensemble's fused posteriors are "
            "offline only); give a single --model"
        )
    hp = getattr(model, "hparams", {})
    if hp.get("bidirectional") or getattr(model.encoder, "bidirectional", False):
        raise UserError(
            "this model is bidirectional: its backward direction reads each utterance from its end, so it cannot "
            "recognise a stream before the stream ends; train one with `bidirectional: false` to stream"
        )
    if not isinstance(model.frontend, (FrameStack, ConvSubsampling)):
        raise UserError(f"streaming does not know the front end {type(model.frontend).__name__}")
    if model.training:
        raise ValueError("streaming: put the model in evaluation mode first (model.eval())")


class StreamRecognizer:
    """Streams for one CTC model (anything with ``cmvn``, ``frontend``, ``encoder``, ``output``,
    ``tokenizer``, ``sampling_rate`` and ``hparams.feat_dim``: a ``CTCTask``) and one decoding setup.

    ``decoder``: None for greedy decoding, or the offline :class:`CTCBeamSearch` whose settings each
    stream's beam search takes; ``blank_penalty`` as offline. ``beam_history``: see :class:`BeamDecoding`.
    The model must be unidirectional and in evaluation mode.
    """

    def __init__(
        self,
        model,
        decoder: CTCBeamSearch | None = None,
        blank_penalty: float = 0.0,
        beam_history: int | None = DEFAULT_BEAM_HISTORY,
    ) -> None:
        check_streamable(model)
        if decoder is not None and not isinstance(decoder, CTCBeamSearch):
            raise UserError(RESCORING_REFUSAL)
        hp = getattr(model, "hparams", {})
        self.model = model
        self.tokenizer = model.tokenizer
        self.sampling_rate = int(getattr(model, "sampling_rate", 16000))
        self.feat_dim = int(hp["feat_dim"]) if "feat_dim" in hp else int(model.cmvn.mean.numel())
        self.fbank = Fbank(self.feat_dim, self.sampling_rate)
        self.window, self.shift = self.fbank.window, self.fbank.shift
        self.frame_fbank = FrameFbank(self.fbank)
        self.device = next(model.parameters()).device
        self.blank = self.tokenizer.blank_id
        self.blank_penalty = float(blank_penalty)
        self.beam = BeamFactory(decoder) if decoder is not None else None
        self.beam_history = beam_history

    # a stream's life ----------------------------------------------------------------------------
    def new_state(self) -> StreamState:
        frontend = self.model.frontend
        stack = conv = None
        if isinstance(frontend, FrameStack):
            stack = torch.zeros(0, self.feat_dim, device=self.device)
        else:
            conv, channels, freq = [], 1, self.feat_dim
            for layer in frontend.convs:
                conv.append(torch.zeros(channels, 1, freq, device=self.device))  # frame -1: the zero padding
                channels, freq = layer.out_channels, (freq + 1) // 2
        decoder = (
            BeamDecoding(self.beam, self.beam_history) if self.beam is not None
            else GreedyDecoding(self.tokenizer, self.blank)
        )  # fmt: skip
        return StreamState(torch.zeros(0), stack, conv, None, decoder)

    def stream(self, id: str = "stream", *, keep_log_probs: bool = False, keep_feats: bool = False) -> Stream:
        """A new stream. ``keep_log_probs`` / ``keep_feats`` keep every frame's log-probabilities / raw
        fbank features (for checks; a stream otherwise keeps none)."""
        return Stream(self, id, keep_log_probs=keep_log_probs, keep_feats=keep_feats)

    def batch(self) -> StreamBatch:
        """A :class:`StreamBatch` of this recogniser's streams."""
        return StreamBatch(self)

    # the steps ------------------------------------------------------------------------------------
    def frames(self, state: StreamState, samples: Tensor) -> Tensor:
        """The whole frames (n, window) of raw samples that ``samples`` complete (frame i covers samples
        [i * shift, i * shift + window)); the samples from the next frame's start on wait in ``state``."""
        state.num_samples += samples.numel()
        buf = torch.cat([state.samples, samples]) if state.samples.numel() else samples
        if buf.numel() < self.window:
            state.samples = buf
            return buf.new_zeros(0, self.window)
        n = 1 + (buf.numel() - self.window) // self.shift
        frames = buf.as_strided((n, self.window), (self.shift, 1))
        state.samples = buf[n * self.shift :].clone()
        state.num_frames += n
        return frames

    def subsample(self, state: StreamState, x: Tensor, final: bool) -> Tensor:
        """Normalised frames (n, feat_dim) -> the front end's output frames they complete (m, F')."""
        frontend = self.model.frontend
        if state.stack is not None:
            k = frontend.factor
            buf = torch.cat([state.stack, x]) if x.numel() else state.stack
            m = buf.shape[0] // k
            out, state.stack = buf[: m * k].reshape(m, k * self.feat_dim), buf[m * k :]
            if final and state.stack.shape[0]:
                last = F.pad(state.stack, (0, 0, 0, k - state.stack.shape[0]))  # zero frames, as offline
                out, state.stack = torch.cat([out, last.reshape(1, k * self.feat_dim)]), state.stack[:0]
            return out
        h = x.unsqueeze(0)  # (channels 1, n, feat_dim)
        for i, conv in enumerate(frontend.convs):
            buf = torch.cat([state.conv[i], h], dim=1) if h.shape[1] else state.conv[i]
            if final and buf.shape[1] % 2 == 0:  # the last output's right neighbour: the offline zero padding
                buf = F.pad(buf, (0, 0, 0, 1))
            m = (buf.shape[1] - 1) // 2
            if m:
                out = F.conv2d(buf[None, :, : 2 * m + 1], conv.weight, conv.bias, stride=2, padding=(0, 1))
                h = torch.relu(out[0])
            else:
                h = buf.new_zeros(conv.out_channels, 0, (buf.shape[2] + 1) // 2)
            state.conv[i] = buf[:, 2 * m :].clone() if not final else buf[:, :0]
        c, m, fq = h.shape
        return h.permute(1, 0, 2).reshape(m, c * fq)

    def encode(self, xs: Sequence[Tensor], states: Sequence[Any]) -> tuple[list[Tensor], list[Any]]:
        """One batch through the encoder: each stream's new front-end frames (n_i >= 1, F') and carried
        state -> its log-probabilities (n_i, V) and new state.

        The new states stay batched (each stream holds a :class:`BatchedState` and its row): when the next
        round has the same streams in the same order, the batch's state is reused as it is; otherwise
        each stream's row is cut out and the rows stacked."""
        lengths = torch.tensor([x.shape[0] for x in xs], device=self.device)
        x = torch.nn.utils.rnn.pad_sequence(list(xs), batch_first=True)
        y, state = self.model.encoder(x, lengths, _stack_states(states))
        logits = self.model.output(y)
        log_probs = logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(dim=-1)
        outs = [log_probs[i, : int(n)] for i, n in enumerate(lengths.tolist())]
        batched = BatchedState(state, len(xs))
        return outs, [(batched, i) for i in range(len(xs))]

    @torch.inference_mode()
    def advance(self, streams: Sequence[Stream], chunks: Sequence[Tensor | None], final: Sequence[bool]) -> None:
        """Feed each stream its chunk (None: no audio) and, where ``final``, end it. The new frames of all
        streams go through fbank and CMVN together; stacking / convolutions run per stream (each carries its
        own context); the encoder runs once for all streams with new frames; then each stream's decoder."""
        frames = [
            self.frames(s.state, c) if c is not None and c.numel() else None
            for s, c in zip(streams, chunks, strict=True)
        ]
        counts = [0 if f is None else f.shape[0] for f in frames]
        feats = x = None
        if sum(counts):
            feats = self.frame_fbank(torch.cat([f for f in frames if f is not None and f.shape[0]]))
            x = self.model.cmvn(feats.to(self.device))
        todo: list[tuple[Stream, Tensor]] = []
        start = 0
        for stream, n, last in zip(streams, counts, final, strict=True):
            if stream.keep_feats and n:
                stream._feats.append(feats[start : start + n].clone())
            new = x[start : start + n] if n else torch.zeros(0, self.feat_dim, device=self.device)
            start += n
            out = self.subsample(stream.state, new, last)
            if out.shape[0]:
                todo.append((stream, out))
        if todo:
            outs, states = self.encode([x for _, x in todo], [s.state.encoder for s, _ in todo])
            for (stream, _), lp, st in zip(todo, outs, states, strict=True):
                stream.state.encoder = st
                stream.state.num_steps += lp.shape[0]
                lp = lower_blank(lp, self.blank_penalty, self.blank)
                if stream.keep_log_probs:
                    stream._log_probs.append(lp.cpu())
                stream.state.decoder.step(lp)
        for stream, last in zip(streams, final, strict=True):
            if last:
                stream.text = stream.state.decoder.finish()
                stream.state.encoder = None


class BatchedState:
    """The encoder state of the streams of one batch, as the encoder returned it; a stream's own state
    (a batch of one) is cut out on demand."""

    def __init__(self, state: State, size: int) -> None:
        self.state, self.size = state, size
        self.rows: dict[int, State] = {}

    def row(self, i: int) -> State:
        if i not in self.rows:
            self.rows[i] = _row(self.state, i)
        return self.rows[i]


def own_state(state: Any) -> State:
    """A stream's encoder state as a batch of one (None for a fresh stream)."""
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], BatchedState):
        return state[0].row(state[1])
    return state


def _stack_states(states: Sequence[Any]) -> State:
    """The streams' states as one batch: the previous batch's state itself when these are its streams,
    in its order; otherwise their rows stacked (a fresh stream's state as zeros)."""
    first = states[0]
    if (
        isinstance(first, tuple)
        and isinstance(first[0], BatchedState)
        and first[0].size == len(states)
        and all(isinstance(s, tuple) and s[0] is first[0] and s[1] == i for i, s in enumerate(states))
    ):
        return first[0].state
    return _cat_states([own_state(s) for s in states])


def _cat_states(states: Sequence[State]) -> State:
    """Per-stream states (batches of one; None for a fresh stream) -> one batched state."""
    template = next((s for s in states if s is not None), None)
    if template is None:
        return None
    filled = [s if s is not None else map_state(template, torch.zeros_like) for s in states]
    return _cat(filled)


def _cat(states: Sequence[Any]) -> Any:
    first = states[0]
    if isinstance(first, Tensor):
        return torch.cat(list(states), dim=0) if len(states) > 1 else first
    return type(first)(_cat([s[i] for s in states]) for i in range(len(first)))


def _row(state: State, i: int) -> State:
    return map_state(state, lambda t: t[i : i + 1].clone())


# --- the user's handles ----------------------------------------------------------------------------


def as_samples(chunk: Any, name: str = "stream") -> Tensor:
    """A chunk as a float32 mono waveform: float samples in [-1, 1] as they are, 16-bit integers
    divided by 32768 (as soundfile reads PCM), (channels, samples) averaged."""
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        if len(chunk) % 2:
            raise ValueError(f"{name}: {len(chunk)} bytes of 16-bit PCM ends mid-sample")
        chunk = np.frombuffer(bytes(chunk), dtype="<i2").copy()
    wave = torch.as_tensor(chunk)
    if wave.dtype == torch.int16:
        wave = wave.float() / 32768.0
    elif not wave.dtype.is_floating_point:
        raise ValueError(f"{name}: samples must be float or 16-bit integers, not {wave.dtype}")
    wave = wave.float()
    if wave.dim() == 2:
        wave = wave.mean(0)
    if wave.dim() != 1:
        raise ValueError(f"{name}: a chunk must be (samples,) or (channels, samples), got {tuple(wave.shape)}")
    if not torch.isfinite(wave).all():
        raise ValueError(f"{name}: non-finite samples")
    return wave.cpu().contiguous()


class Stream:
    """One audio stream: ``accept`` chunks (any size, at the recogniser's sampling rate), read
    ``partial`` after each, ``finish`` for the final transcript (also in ``text``)."""

    def __init__(self, recognizer: StreamRecognizer, id: str = "stream", *, keep_log_probs: bool = False,
                 keep_feats: bool = False) -> None:  # fmt: skip
        self.recognizer = recognizer
        self.id = id
        self.state = recognizer.new_state()
        self.keep_log_probs, self.keep_feats = keep_log_probs, keep_feats
        self._log_probs: list[Tensor] = []
        self._feats: list[Tensor] = []
        self.text: str | None = None

    def __repr__(self) -> str:
        return f"Stream({self.id!r}, {self.seconds:.2f} s, {'done' if self.done else 'open'}: {self.partial!r})"

    @property
    def done(self) -> bool:
        return self.text is not None

    @property
    def seconds(self) -> float:
        """Audio accepted so far."""
        return self.state.num_samples / self.recognizer.sampling_rate

    def check(self, chunk: Any, sampling_rate: int | None = None) -> Tensor:
        if self.done:
            raise ValueError(f"{self.id}: the stream has finished; start a new one")
        rate = self.recognizer.sampling_rate
        if sampling_rate is not None and int(sampling_rate) != rate:
            raise UserError(
                f"{self.id}: audio at {sampling_rate} Hz, but the model takes {rate} Hz; resample it first "
                f"(toolkit.data.audio.read_audio(path, {rate}) reads a file at the model's rate)"
            )
        return as_samples(chunk, self.id)

    def accept(self, chunk: Any, sampling_rate: int | None = None) -> str:
        """Feed a chunk (a 1-D float array or tensor, or 16-bit PCM as int16 samples or bytes); returns
        the partial transcript."""
        samples = self.check(chunk, sampling_rate)
        self.recognizer.advance([self], [samples], [False])
        return self.partial

    def finish(self) -> str:
        """End the stream (the last frames padded as offline) and return the final transcript."""
        if not self.done:
            self.recognizer.advance([self], [None], [True])
        return self.text

    @property
    def partial(self) -> str:
        """The best transcript so far (the final one once finished)."""
        return self.text if self.text is not None else self.state.decoder.partial

    @property
    def num_frames(self) -> int:
        """Fbank frames computed so far."""
        return self.state.num_frames

    @property
    def log_probs(self) -> Tensor:
        """(frames, V) every encoder frame's log-probabilities so far (``keep_log_probs=True``)."""
        if not self.keep_log_probs:
            raise ValueError("start the stream with keep_log_probs=True to keep its log-probabilities")
        v = self.recognizer.tokenizer.vocab_size
        return torch.cat(self._log_probs) if self._log_probs else torch.zeros(0, v)

    @property
    def feats(self) -> Tensor:
        """(frames, feat_dim) the raw fbank frames so far (``keep_feats=True``)."""
        if not self.keep_feats:
            raise ValueError("start the stream with keep_feats=True to keep its features")
        return torch.cat(self._feats) if self._feats else torch.zeros(0, self.recognizer.feat_dim)

    def buffer_sizes(self) -> dict[str, int]:
        """What the stream holds between chunks: samples, frames waiting in the front end, the
        encoder state's elements, the beam search's lattice frames and LM cache entries."""
        st = self.state
        sizes = {
            "samples": int(st.samples.numel()),
            "stack_frames": 0 if st.stack is None else int(st.stack.shape[0]),
            "conv_frames": 0 if st.conv is None else sum(int(c.shape[1]) for c in st.conv),
            "encoder_state": _numel(own_state(st.encoder)),
        }
        return sizes | st.decoder.sizes()


def _numel(state: State) -> int:
    if state is None:
        return 0
    if isinstance(state, Tensor):
        return state.numel()
    return sum(_numel(s) for s in state)


class StreamBatch:
    """Many streams served together: each round (``step``) takes every stream's queued audio through
    its own front end, then all streams with new frames through the encoder as one batch (their
    states stacked, each its own length; streams without new frames sit the round out), then each
    stream's decoder. Streams join (``add``) and end (``finish``) whenever they like; a stream's output
    equals that stream decoded alone.
    """

    def __init__(self, recognizer: StreamRecognizer) -> None:
        self.recognizer = recognizer
        self.streams: dict[str, Stream] = {}
        self.queued: dict[str, list[Tensor]] = {}
        self.ending: set[str] = set()

    def __len__(self) -> int:
        return len(self.streams)

    def __contains__(self, id: str) -> bool:
        return id in self.streams

    def add(self, id: str, **kwargs: Any) -> Stream:
        """Open a stream (``kwargs`` as :meth:`StreamRecognizer.stream`)."""
        if id in self.streams:
            raise ValueError(f"stream {id!r} is already open")
        stream = self.recognizer.stream(id, **kwargs)
        self.streams[id] = stream
        self.queued[id] = []
        return stream

    def accept(self, id: str, chunk: Any, sampling_rate: int | None = None) -> None:
        """Queue a chunk for stream ``id``; it is processed at the next ``step``."""
        stream = self.streams[id]
        if id in self.ending:
            raise ValueError(f"{id}: the stream is finishing; start a new one")
        self.queued[id].append(stream.check(chunk, sampling_rate))

    def finish(self, id: str) -> None:
        """End stream ``id`` at the next ``step`` (after its queued audio)."""
        if id not in self.streams:
            raise KeyError(id)
        self.ending.add(id)

    def step(self) -> list[Stream]:
        """One round: every stream with queued audio or ending advances; ended streams leave the batch
        (their results stay on the returned :class:`Stream` objects). Returns the streams advanced."""
        ids = [i for i in self.streams if self.queued[i] or i in self.ending]
        if not ids:
            return []
        streams = [self.streams[i] for i in ids]
        chunks = [torch.cat(self.queued[i]) if self.queued[i] else None for i in ids]
        final = [i in self.ending for i in ids]
        for i in ids:
            self.queued[i] = []
        self.recognizer.advance(streams, chunks, final)
        for i, last in zip(ids, final, strict=True):
            if last:
                del self.streams[i], self.queued[i]
                self.ending.discard(i)
        return streams

    def run(self, sources: Iterable[tuple[str, Iterable[Any]]], max_streams: int = 8) -> Iterable[Stream]:
        """Decode ``(id, chunks)`` sources, at most ``max_streams`` at a time, one chunk per stream per
        round; yields each stream as it finishes."""
        pending = iter(sources)
        active: dict[str, Any] = {}
        exhausted = False
        while True:
            while not exhausted and len(active) < max_streams:
                nxt = next(pending, None)
                if nxt is None:
                    exhausted = True
                    break
                sid, chunks = nxt
                self.add(sid)
                active[sid] = iter(chunks)
            if not active:
                return
            for sid, it in list(active.items()):
                chunk = next(it, None)
                if chunk is None:
                    self.finish(sid)
                    del active[sid]
                else:
                    self.accept(sid, chunk)
            for stream in self.step():
                if stream.done:
                    yield stream


def chunk_samples(sampling_rate: int, chunk_ms: float) -> int:
    """Samples in a chunk of ``chunk_ms`` milliseconds (at least one)."""
    return max(1, int(round(sampling_rate * chunk_ms / 1000.0)))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))]


__all__ = [
    "BatchedState",
    "BeamDecoding",
    "GreedyDecoding",
    "Stream",
    "StreamBatch",
    "StreamRecognizer",
    "StreamState",
    "as_samples",
    "check_streamable",
    "chunk_samples",
    "percentile",
]
