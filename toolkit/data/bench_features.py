"""Feature-extraction speed: ``python -m toolkit.data.bench_features MANIFEST [--out result.json]``.

Times, on one thread, reading + resampling the audio and the 80-bin fbank for every utterance of a
manifest, and reports them as multiples of real time per core (audio seconds / compute seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from toolkit.data.io import write_json


def measure(manifest: str, sampling_rate: int = 16000, limit: int | None = None) -> dict:
    import torch
    from tqdm import tqdm

    from toolkit.data.audio import read_audio
    from toolkit.data.features import Fbank
    from toolkit.data.manifest import read_manifest

    torch.set_num_threads(1)
    entries = read_manifest(manifest)[:limit]
    fbank = Fbank(sampling_rate=sampling_rate)
    read_s = feat_s = audio_s = 0.0
    frames = 0
    for e in tqdm(entries, desc="features", unit="utt"):
        t0 = time.perf_counter()
        wave, _ = read_audio(e["audio_filepath"], sampling_rate)
        t1 = time.perf_counter()
        frames += fbank(wave).shape[0]
        t2 = time.perf_counter()
        read_s, feat_s, audio_s = read_s + t1 - t0, feat_s + t2 - t1, audio_s + wave.numel() / sampling_rate
    return {
        "manifest": os.path.abspath(manifest), "utterances": len(entries), "audio_hours": round(audio_s / 3600, 4),
        "frames": frames, "threads": 1, "read_resample_s": round(read_s, 3), "fbank_s": round(feat_s, 3),
        "x_realtime_per_core_fbank": round(audio_s / feat_s, 1),
        "x_realtime_per_core_read_plus_fbank": round(audio_s / (read_s + feat_s), 1),
        "cpu": platform.processor() or platform.machine(), "cores_visible": os.cpu_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("manifest")
    p.add_argument("--sampling-rate", type=int, default=16000)
    p.add_argument("--limit", type=int, default=None, help="only the first N utterances")
    p.add_argument("--out", default=None, help="write the result as JSON here too")
    args = p.parse_args()
    result = measure(args.manifest, args.sampling_rate, args.limit)
    print(json.dumps(result, indent=2))
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
