"""A trained CTC acoustic model and what it does: ``transcribe`` files, folders, manifests or waveforms
with any of ``recur decode``'s decoding options; results with text, timing and, given references, scores."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from toolkit.data.text import read_references
from toolkit.decode.scoring import score, write_scoring
from toolkit.decode.stream import DEFAULT_BEAM_HISTORY, RESCORING_REFUSAL, Stream, StreamRecognizer, check_streamable
from toolkit.decode.transcribe import Result, Utterance, expand_inputs, transcribe
from toolkit.errors import UserError
from toolkit.train.metrics_file import update_final

from .decoding import DecodeOptions, build_decoder

Input = str | os.PathLike | Tensor | Any  # a path (file, folder, manifest) or a waveform array


@dataclass
class Transcription(Sequence[Result]):
    """The results of one ``transcribe`` call, in input order (a sequence of ``Result``: id, text, ref,
    seconds). ``skipped``: (id, reason) of inputs that could not be decoded. With references,
    ``wer`` / ``cer`` are corpus figures (fractions) over every utterance that has one, a skipped
    utterance counting as a deletion of its whole reference."""

    results: list[Result]
    skipped: list[tuple[str, str]]
    audio_s: float
    elapsed_s: float
    refs: dict[str, str] = field(default_factory=dict)
    wer: float | None = None
    cer: float | None = None

    def __getitem__(self, i):
        return self.results[i]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.results]

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per second of audio."""
        return self.elapsed_s / self.audio_s if self.audio_s else 0.0

    def write_scoring(self, out_dir: str | os.PathLike, name: str = "") -> dict[str, float]:
        """recogs.txt, errs.txt, wer_summary.txt into ``out_dir``; returns {"wer", "cer"}."""
        return write_scoring(self.refs, {r.id: r.text for r in self.results}, out_dir, name=name)

    def __repr__(self) -> str:
        figures = f", WER {100 * self.wer:.2f}%" if self.wer is not None else ""
        return f"Transcription({len(self.results)} results, {len(self.skipped)} skipped{figures}): {self.texts!r}"


class AcousticModel:
    """A trained CTC model (``toolkit.load`` returns one for an acoustic model's folder or checkpoint).

    ``task`` is the ``CTCTask`` (or a ``CTCEnsemble`` of several); ``tokenizer``, ``sampling_rate``
    and ``feat_dim`` are those it was trained with.
    """

    def __init__(self, task, source: str | None = None) -> None:
        self.task = task
        self.source = source
        self.tokenizer = task.tokenizer
        self.sampling_rate: int = task.sampling_rate
        self.feat_dim: int = task.hparams.feat_dim
        self.device = str(next(task.parameters()).device)

    def __repr__(self) -> str:
        h = self.task.hparams
        return (
            f"AcousticModel({self.source or ''}: {h.get('encoder', '?')} CTC over {self.tokenizer.kind} tokens, "
            f"{self.sampling_rate} Hz, {self.feat_dim} mel bins)"
        )

    def decoder(self, options: DecodeOptions, lexicon_dir: str | os.PathLike | None = None):
        """The decoder for ``options`` (None: greedy), to reuse across ``transcribe`` calls."""
        folder = Path(lexicon_dir) if lexicon_dir else self._exp_dir()
        return build_decoder(self.tokenizer, options, self.device, folder)

    def _exp_dir(self) -> Path | None:
        return Path(self.source) if self.source and Path(self.source).is_dir() else None

    def utterances(self, inputs: Input | Sequence[Input], sampling_rate: int | None = None) -> list[Utterance]:
        """What ``transcribe`` decodes: files, folders (recursively), manifests (with their references),
        and waveforms ((samples,) or (channels, samples) arrays or tensors at ``sampling_rate``)."""
        if isinstance(inputs, (str, os.PathLike)) or _is_wave(inputs):
            inputs = [inputs]
        out: list[Utterance] = []
        paths: list[str] = []
        for i, item in enumerate(inputs):
            if _is_wave(item):
                if sampling_rate is None:
                    raise ValueError("transcribe: waveforms need their sampling_rate=")
                out.append(Utterance(f"wave{i}", f"<wave {i}>", wave=item, sampling_rate=sampling_rate))
            else:
                paths.append(os.fspath(item))
        return expand_inputs(paths) + out if paths else out

    def transcribe(
        self,
        inputs: Input | Sequence[Input],
        *,
        sampling_rate: int | None = None,
        references: Mapping[str, str] | str | os.PathLike | None = None,
        decoder: Callable | None = None,
        batch_seconds: float = 60.0,
        progress: bool = False,
        on_error: Callable[[str, str], None] | None = None,
        **options: Any,
    ) -> Transcription:
        """Transcribe ``inputs`` (see :meth:`utterances`) and, where references exist, score them:
        manifest texts, same-stem ``.txt`` files beside audio files, or ``references`` (id -> text, or a
        TSV / Kaldi ``text`` file), which take precedence.

        ``options`` are :class:`DecodeOptions` fields: ``beam``, ``beam_tokens``, ``lm``, ``lm_weight``,
        ``word_score``, ``lexicon``, ``blank_penalty``, ``rescore_lm``, ``rescore_weight``,
        ``rescore_word_score``, ``nbest``; or pass ``decoder=self.decoder(DecodeOptions(...))`` to build
        the beam search once for many calls (``blank_penalty`` is then still read from ``options``).
        ``on_error(id, reason)`` hears of each input skipped (unreadable, empty audio).
        """
        settings = DecodeOptions(**options)
        if decoder is None:
            decoder = self.decoder(settings)
        utts = self.utterances(inputs, sampling_rate)
        if isinstance(references, (str, os.PathLike)):
            references = read_references(references)
        if references:
            utts = [replace(u, ref=references[u.id]) if u.id in references else u for u in utts]
        skipped: list[tuple[str, str]] = []

        def report(utt: Utterance, reason: str) -> None:
            skipped.append((utt.id, reason))
            if on_error is not None:
                on_error(utt.id, reason)

        results, timing = transcribe(
            self.task, utts, decoder, batch_seconds, report, progress=progress, blank_penalty=settings.blank_penalty
        )
        out = Transcription(results, skipped, timing["audio_s"], timing["elapsed_s"])
        # references in the form the model is taught to write (the tokenizer's lowercasing, punctuation)
        norm = self.tokenizer.normalize
        out.refs = {u.id: norm(u.ref) for u in utts if u.ref is not None}
        if out.refs:
            counts, _ = score(out.refs, {r.id: r.text for r in results})
            out.wer, out.cer = counts.wer, counts.cer
        return out

    def stream_recognizer(self, *, beam_history: int | None = DEFAULT_BEAM_HISTORY, **options: Any) -> StreamRecognizer:
        """A recogniser of audio streams with :meth:`transcribe`'s decoding ``options`` (n-best rescoring
        aside): each of its streams (``.stream(id)``, or many at once through ``.batch()``) gives the
        frames, log-probabilities and transcript of the offline decode. See :mod:`toolkit.decode.stream`."""
        settings = DecodeOptions(**options)
        check_streamable(self.task)
        if settings.rescore_lm:
            raise UserError(RESCORING_REFUSAL)
        return StreamRecognizer(self.task, self.decoder(settings), settings.blank_penalty, beam_history)

    def stream(
        self, id: str = "stream", *, keep_log_probs: bool = False, keep_feats: bool = False, **options: Any
    ) -> Stream:
        """One audio stream: ``accept(chunk)`` chunks of any size at ``sampling_rate``, read ``partial``,
        ``finish()`` for the final transcript. ``options`` as :meth:`stream_recognizer`; ``keep_log_probs``
        / ``keep_feats`` keep every frame's log-probabilities / fbank features (for checks)."""
        return self.stream_recognizer(**options).stream(id, keep_log_probs=keep_log_probs, keep_feats=keep_feats)

    def record(self, result: Transcription, set_name: str, options: DecodeOptions | None = None,
               exp_dir: str | os.PathLike | None = None) -> tuple[str, Path, dict[str, float]]:
        """Write ``result``'s scoring to ``<exp_dir>/decode/<tag>/`` and its figures into the experiment's
        metrics.json (``<tag>/wer``, ``/cer``, ``/rtf``), the tag being ``set_name`` + the options' tag.
        ``exp_dir`` defaults to the model's experiment folder. Returns (tag, folder, figures)."""
        folder = Path(exp_dir) if exp_dir else self._exp_dir()
        if folder is None:
            raise ValueError("record: this model was not loaded from an experiment folder; give exp_dir=")
        tag = set_name + (options or DecodeOptions()).tag
        out_dir = folder / "decode" / tag
        figures = result.write_scoring(out_dir, name=tag)
        update_final(folder, {f"{tag}/wer": figures["wer"], f"{tag}/cer": figures["cer"], f"{tag}/rtf": result.rtf})
        return tag, out_dir, figures


def _is_wave(item: Any) -> bool:
    return hasattr(item, "shape") and hasattr(item, "dtype")
