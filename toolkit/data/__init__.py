"""Data for training and evaluation: manifests, audio, features, CMVN, tokenizers, batching, LM streams.

Knows nothing of models. Data flows manifest -> SpeechDataset -> BucketBatchSampler -> SpeechBatch.
Names are imported on first use (PEP 562), so importing a light part does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "AudioInfo": "toolkit.data.audio",
    "BadAudio": "toolkit.data.audio",
    "BucketBatchSampler": "toolkit.data.sampler",
    "ByteTokenizer": "toolkit.data.tokenizer",
    "Fbank": "toolkit.data.features",
    "GlobalCMVN": "toolkit.data.cmvn",
    "Rejections": "toolkit.data.manifest",
    "SentenceBatches": "toolkit.data.lm",
    "SentencePieceTokenizer": "toolkit.data.tokenizer",
    "SpecAugment": "toolkit.data.features",
    "SpeechBatch": "toolkit.data.dataset",
    "SpeechDataset": "toolkit.data.dataset",
    "StreamBatches": "toolkit.data.lm",
    "SymbolTokenizer": "toolkit.data.tokenizer",
    "Tokenizer": "toolkit.data.tokenizer",
    "atomic_open": "toolkit.data.io",
    "batchify": "toolkit.data.lm",
    "collate": "toolkit.data.dataset",
    "compute_cmvn": "toolkit.data.dataset",
    "encode_stream": "toolkit.data.lm",
    "filter_manifest": "toolkit.data.manifest",
    "load_tokenizer": "toolkit.data.tokenizer",
    "normalize_text": "toolkit.data.text",
    "probe_audio": "toolkit.data.audio",
    "read_audio": "toolkit.data.audio",
    "read_byte_stream": "toolkit.data.lm",
    "read_manifest": "toolkit.data.manifest",
    "read_text": "toolkit.data.lm",
    "resample": "toolkit.data.audio",
    "screen": "toolkit.data.dataset",
    "speech_loader": "toolkit.data.dataset",
    "speed_perturb": "toolkit.data.features",
    "total_hours": "toolkit.data.manifest",
    "train_tokenizer": "toolkit.data.tokenizer",
    "write_json": "toolkit.data.io",
    "write_lines": "toolkit.data.io",
    "write_manifest": "toolkit.data.manifest",
    "write_text": "toolkit.data.io",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'toolkit.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
