"""Score sentences with a trained language model: the bits each sentence costs, and the total.

python egs/score_text.py exp/synth/lm/char_lstm "the cat sat on the mat" "mat the on sat cat the"
"""

import math
import sys

import toolkit

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python egs/score_text.py LM_EXP_DIR_OR_CKPT SENTENCE...")
    lm = toolkit.load(sys.argv[1])
    for sentence in sys.argv[2:]:
        s = lm.score([sentence])
        print(f"{s.nll / math.log(2):8.2f} bits  {sentence}")
    print(f"perplexity of all of them as one text: {lm.perplexity(sys.argv[2:]):.2f}")
