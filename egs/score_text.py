"""Score sentences with a trained language model: the bits each sentence costs, and the total.

python egs/score_text.py exp/synth/lm/char_lstm "the cat sat on the mat" "mat the on sat cat the"
"""

import math
import sys

from toolkit.tasks.lm_eval import load_lm, score_text

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python egs/score_text.py LM_EXP_DIR_OR_CKPT SENTENCE...")
    model = load_lm(sys.argv[1])
    for sentence in sys.argv[2:]:
        s = score_text(model, [sentence], progress=False)
        print(f"{s.nll / math.log(2):8.2f} bits  {sentence}")
