"""Transcribe audio files with a trained CTC model (what `recur decode` does, from Python).

python egs/decode_file.py exp/fsdd/res_indrnn some.wav other.flac [--beam 8]
"""

import sys

import toolkit

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--beam"]
    if len(args) < 2:
        sys.exit("usage: python egs/decode_file.py EXP_DIR_OR_CKPT AUDIO... [--beam 8]")
    beam = 8 if "--beam" in sys.argv else 0
    model = toolkit.load(args[0])
    result = model.transcribe(args[1:], beam=beam, on_error=lambda uid, why: print("skipped:", why))
    for r in result:
        print(f"{r.id}\t{r.text}")
    print(f"real-time factor {result.rtf:.3f}")
