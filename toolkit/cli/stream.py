"""``recur stream``: recognise audio chunk by chunk, as it arrives, with a unidirectional CTC model.

Inputs are what ``recur decode`` takes (audio files, folders, manifests) or ``-``: raw 16-bit
little-endian mono PCM on standard input at the model's sampling rate. Files are read (and resampled
to the model's rate, as ``recur decode`` does) and fed in chunks of ``--chunk-ms``; ``--realtime``
paces them at real time. The final line of each input is ``id<TAB>text``, as ``recur decode`` prints
it (the same text: streaming is exact); on a terminal the partial result of the stream being decoded
shows on one line as it changes. Timing goes to standard error.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from toolkit.cli.decode import add_search_options, score_result, transcripts_printed

COMMAND = "stream"
HELP = (
    "recognise audio chunk by chunk as it arrives (files, folders, manifests, or raw 16-bit PCM on stdin "
    "with '-') with a unidirectional CTC model: partial results as they change, final lines as recur decode"
)
STDIN = "-"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        help="audio files, folders, .jsonl manifests, or '-' for raw 16-bit little-endian mono PCM on standard "
        "input at the model's sampling rate",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="experiment folder (exp/<corpus>/<model>), a .ckpt file, or an export folder (recur export)",
    )
    parser.add_argument("--chunk-ms", type=float, default=160.0, help="audio per chunk in milliseconds")
    parser.add_argument("--realtime", action="store_true", help="feed the audio at real time (one chunk per chunk)")
    parser.add_argument(
        "--streams",
        type=int,
        default=1,
        help="inputs recognised at once, their chunks batched through the encoder each round",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    add_search_options(parser)
    parser.add_argument(
        "--beam-history",
        type=int,
        default=400,
        help="decoder frames the beam search keeps before committing its best path (memory per stream; "
        "0 keeps the whole utterance)",
    )
    parser.add_argument("--ref", help="reference transcripts by id (TSV 'id<TAB>text' or Kaldi 'text')")
    parser.add_argument("--out", help="write 'id<TAB>transcript' lines here instead of stdout")
    parser.add_argument(
        "--set",
        dest="set_name",
        help="name of the set; with references, scores go to <model>/decode/<set>/ and into metrics.json, as "
        "recur decode --set records them",
    )
    parser.add_argument("--exp-dir", help="folder for the scores and metrics.json (default: the --model folder)")


class Source:
    """One input as chunks: ``chunks()`` yields (samples, is_last). ``warning`` is set when the input
    ended badly but still has a result (PCM ending mid-sample)."""

    def __init__(self, uid: str, ref: str | None) -> None:
        self.id, self.ref = uid, ref
        self.warning: str | None = None

    def open(self) -> None:
        """Read what must be read before the first chunk (raises BadAudio)."""

    def chunks(self) -> Iterator:
        raise NotImplementedError


class FileSource(Source):
    def __init__(self, utt, rate: int, size: int) -> None:
        super().__init__(utt.id, utt.ref)
        self.utt, self.rate, self.size = utt, rate, size

    def open(self) -> None:
        from toolkit.data.audio import read_audio

        u = self.utt
        self.wave, _ = read_audio(u.path, self.rate, u.offset, u.duration)  # raises BadAudio

    def chunks(self) -> Iterator:
        n = self.wave.numel()
        for start in range(0, n, self.size):
            yield self.wave[start : start + self.size], start + self.size >= n


class StdinSource(Source):
    def __init__(self, size: int) -> None:
        super().__init__("stdin", None)
        self.size = size

    def chunks(self) -> Iterator:
        stream = sys.stdin.buffer
        total = 0
        while True:
            data = stream.read(2 * self.size)
            if not data:
                return
            total += len(data)
            if len(data) % 2:  # only at the end: read(n) returns fewer bytes only at end of file
                self.warning = f"stdin: ends mid-sample ({total} bytes, an odd count); its last byte is dropped"
                data = data[:-1]
                if not data:
                    return
            yield data, False


def _sources(inputs: list[str], rate: int, size: int) -> list[Source]:
    from toolkit.decode.transcribe import Utterance, expand_inputs
    from toolkit.errors import UserError

    if inputs.count(STDIN) > 1:
        raise UserError("standard input ('-') can be read once: give '-' once")
    if STDIN not in inputs:
        return [FileSource(u, rate, size) for u in expand_inputs(inputs)]
    at = inputs.index(STDIN)
    before = expand_inputs(inputs[:at]) if inputs[:at] else []
    after = expand_inputs(inputs[at + 1 :]) if inputs[at + 1 :] else []
    ids = [u.id for u in before + after] + ["stdin"]
    if len(set(ids)) != len(ids):  # as expand_inputs does: full paths name the files
        before, after = (
            [Utterance(u.path, u.path, u.ref, u.offset, u.duration) for u in part] for part in (before, after)
        )
    files = [FileSource(u, rate, size) for u in before], [FileSource(u, rate, size) for u in after]
    return [*files[0], StdinSource(size), *files[1]]


def _options(args: argparse.Namespace):
    from toolkit.api import DecodeOptions

    return DecodeOptions(
        beam=args.beam, beam_tokens=args.beam_tokens, lm=args.lm, lm_weight=args.lm_weight,
        word_score=args.word_score, lexicon=args.lexicon, blank_penalty=args.blank_penalty,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    if (Path(args.model) / "model.onnx").is_file():  # an export folder (recur export): onnxruntime, no PyTorch
        from toolkit.export.decode import stream_export_folder

        return stream_export_folder(args)

    from toolkit.api import AcousticModel, Transcription, load_task
    from toolkit.data.audio import BadAudio
    from toolkit.data.io import write_text
    from toolkit.data.text import read_references
    from toolkit.decode.scoring import score
    from toolkit.decode.stream import chunk_samples, percentile
    from toolkit.decode.transcribe import Result
    from toolkit.errors import UserError
    from toolkit.train.metrics_file import update_final

    if args.chunk_ms <= 0:
        raise UserError(f"--chunk-ms must be positive, not {args.chunk_ms:g}")
    if args.streams < 1:
        raise UserError(f"--streams must be at least 1, not {args.streams}")
    if args.beam_history < 0:
        raise UserError(f"--beam-history must be 0 (keep everything) or a number of frames, not {args.beam_history}")
    options = _options(args)
    options.check()
    model = AcousticModel(load_task(args.model, args.device, expect="asr"), source=args.model)
    settings = {k: v for k, v in asdict(options).items() if not k.startswith("rescore") and k != "nbest"}
    recognizer = model.stream_recognizer(beam_history=args.beam_history or None, **settings)
    rate = model.sampling_rate
    size = chunk_samples(rate, args.chunk_ms)
    chunk_s = size / rate
    sources = _sources(args.inputs, rate, size)
    references = read_references(args.ref) if args.ref else {}

    batch = recognizer.batch()
    # every input with a reference counts, a skipped one as a deletion of its whole reference (as recur decode)
    refs = {src.id: references.get(src.id, src.ref) for src in sources}
    refs = {uid: ref for uid, ref in refs.items() if ref is not None}
    # as recur decode: a recorded set's transcripts go into its recogs.txt, not onto the terminal
    printing = transcripts_printed(args, bool(refs))
    tty = printing and sys.stdout.isatty()
    finals: list[Result | None] = [None] * len(sources)
    settled = [False] * len(sources)
    skipped: list[tuple[str, str]] = []
    printed = 0
    lines: list[str] = []
    round_s: list[float] = []
    latency_s: list[float] = []
    audio_s = 0.0
    shown = ""

    def show(text: str) -> None:  # the partial line on a terminal
        nonlocal shown
        if tty and text != shown:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            sys.stdout.write("\r\033[K" + text[:width])
            sys.stdout.flush()
            shown = text

    def emit() -> None:  # final lines in input order, as soon as all before them are settled
        nonlocal printed
        while printed < len(sources) and settled[printed]:
            r = finals[printed]
            if r is not None:
                line = f"{r.id}\t{r.text}\n"
                lines.append(line)
                if printing:
                    show("")
                    sys.stdout.write(line)
                    sys.stdout.flush()
            printed += 1

    def skip(index: int, message: str) -> None:
        print(f"recur stream: skipped {message}", file=sys.stderr)
        skipped.append((sources[index].id, message))
        settled[index] = True

    queue = list(range(len(sources)))
    active: dict[str, _Live] = {}
    started = time.perf_counter()
    rounds = 0
    while queue or active:
        while queue and len(active) < args.streams:
            index = queue.pop(0)
            src = sources[index]
            try:
                src.open()
            except BadAudio as err:
                skip(index, str(err))
                continue
            uid = src.id if src.id not in active else f"{src.id}#{index}"
            batch.add(uid)
            active[uid] = _Live(index, iter(src.chunks()))
        emit()
        if not active:
            continue
        if args.realtime:  # round k is due once k chunks of audio have played
            delay = started + rounds * chunk_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        rounds += 1
        for uid, live in active.items():
            try:
                samples, last = next(live.chunks, (None, True))
                if samples is not None:
                    batch.accept(uid, samples)
            except ValueError as err:  # non-finite samples and the like: the stream ends here
                last, sources[live.index].warning = True, f"{sources[live.index].id}: {err}"
            if last:
                batch.finish(uid)
                live.ended = time.perf_counter()
        t0 = time.perf_counter()
        advanced = batch.step()
        round_s.append(time.perf_counter() - t0)
        for stream in advanced:
            if not stream.done:
                continue
            live = active.pop(stream.id)
            latency_s.append(time.perf_counter() - live.ended)
            src = sources[live.index]
            if src.warning:
                print(f"recur stream: {src.warning}", file=sys.stderr)
            if stream.num_frames == 0:
                skip(live.index, f"{src.id}: empty or shorter than one 25 ms frame")
                continue
            audio_s += stream.seconds
            finals[live.index] = Result(src.id, stream.text, references.get(src.id, src.ref), stream.seconds)
            settled[live.index] = True
        emit()
        if tty and active:
            uid = min(active, key=lambda k: active[k].index)
            show(f"{sources[active[uid].index].id}\t{batch.streams[uid].partial}")
    emit()
    show("")
    compute = sum(round_s)
    results = [r for r in finals if r is not None]
    if args.out:
        write_text(args.out, "".join(lines))
    if round_s:
        print(
            f"recur stream: {len(results)} decoded, {len(skipped)} skipped; {audio_s:.1f} s of audio in chunks of "
            f"{1000 * chunk_s:g} ms{' at real time' if args.realtime else ''}; compute per chunk"
            f"{' round' if args.streams > 1 else ''} median {1000 * statistics.median(round_s):.2f} ms, p95 "
            f"{1000 * percentile(round_s, 95):.2f} ms; real-time factor {compute / audio_s if audio_s else 0:.3f}; "
            f"latency from the end of the audio to the final result median "
            f"{1000 * statistics.median(latency_s or [0]):.2f} ms, max {1000 * max(latency_s or [0]):.2f} ms",
            file=sys.stderr,
        )
    else:
        print(f"recur stream: 0 decoded, {len(skipped)} skipped", file=sys.stderr)

    out = Transcription(results, skipped, audio_s, compute)
    norm = model.tokenizer.normalize
    out.refs = {uid: norm(ref) for uid, ref in refs.items()}
    exp_dir = Path(args.exp_dir) if args.exp_dir else (Path(args.model) if Path(args.model).is_dir() else None)
    if out.refs:
        counts, _ = score(out.refs, {r.id: r.text for r in results})
        out.wer, out.cer = counts.wer, counts.cer
    tag = score_result("stream", model, out, args, options, exp_dir, printed=printing)
    if tag and exp_dir is not None and args.set_name and round_s:
        update_final(exp_dir, {
            f"{tag}/chunk_ms": 1000 * chunk_s,
            f"{tag}/chunk_compute_median_ms": 1000 * statistics.median(round_s),
            f"{tag}/chunk_compute_p95_ms": 1000 * percentile(round_s, 95),
            f"{tag}/latency_median_ms": 1000 * statistics.median(latency_s or [0]),
        })  # fmt: skip
    return 0 if results or not sources or not skipped else 1


class _Live:
    """An input being recognised: its index, its chunks, when its audio ended."""

    def __init__(self, index: int, chunks: Iterator) -> None:
        self.index, self.chunks = index, chunks
        self.ended = 0.0
