"""Train a small character language model on a text file with Lightning, then report its perplexity.

python egs/train_lm.py TEXT_FILE OUT_DIR [max_steps]
"""

import sys
from pathlib import Path

from lightning.pytorch import Trainer

from toolkit.data.lm import read_text
from toolkit.data.lm_datamodule import LMDataModule
from toolkit.data.tokenizer import train_tokenizer
from toolkit.tasks.lm import LMTask
from toolkit.tasks.lm_eval import score_text

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python egs/train_lm.py TEXT_FILE OUT_DIR [max_steps]")
    text, out = sys.argv[1], Path(sys.argv[2])
    lines = read_text(text)
    train_tokenizer("char", lines).save(out / "tokenizer")
    model = LMTask(str(out / "tokenizer"), encoder="indrnn", hidden_size=128, num_layers=2, lr=3e-3)
    data = LMDataModule(text, text, str(out / "tokenizer"), batch_size=16, bptt=64)
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=out).fit(model, data)  # fmt: skip
    model.eval()
    score = score_text(model, lines[:200], progress=False)
    print(f"{score.tokens} characters: {score.bits_per_token:.3f} bits per character (perplexity {score.ppl:.2f})")
