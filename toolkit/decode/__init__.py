"""From model outputs to text and scores: greedy and beam-search CTC decoding, LM fusion, scoring files."""

from .beam import BeamConfig, CTCBeamSearch, write_lexicon
from .fusion_lm import FlashlightLMBridge, FusionLM
from .greedy import greedy_ctc
from .rescore import NBestRescorer, sentence_log_probs
from .scoring import ErrorCounts, align_words, score, write_scoring

__all__ = [
    "BeamConfig",
    "CTCBeamSearch",
    "ErrorCounts",
    "FlashlightLMBridge",
    "FusionLM",
    "NBestRescorer",
    "align_words",
    "greedy_ctc",
    "score",
    "sentence_log_probs",
    "write_lexicon",
    "write_scoring",
]
