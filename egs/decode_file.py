"""Transcribe audio files with a trained CTC model (what `recur decode` does, from Python).

python egs/decode_file.py exp/fsdd/res_indrnn some.wav other.flac
"""

import sys

from toolkit.decode.transcribe import expand_inputs, load_asr_model, transcribe

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python egs/decode_file.py EXP_DIR_OR_CKPT AUDIO...")
    model = load_asr_model(sys.argv[1])
    results, timing = transcribe(
        model, expand_inputs(sys.argv[2:]), on_error=lambda u, msg: print("skipped:", msg), progress=False
    )
    for r in results:
        print(f"{r.id}\t{r.text}")
    print(f"real-time factor {timing['rtf']:.3f}")
