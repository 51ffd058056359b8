"""The deployment runtime: an exported model folder (``recur export``) decoded without PyTorch.

Importing it pulls in numpy, soundfile and onnxruntime (and flashlight-text for beam search, when a
beam is asked for); nothing of torch, torchaudio or Lightning, and no other toolkit module but
``toolkit.errors``. ``python -m toolkit.deploy FOLDER AUDIO...`` prints ``id<TAB>text`` lines.

* :class:`Recognizer`: the folder's model; ``transcribe(wave)``, ``log_probs(feats)``, ``stream()``;
* :class:`Stream`: ``accept(chunk)``, ``partial``, ``finish()``;
* :class:`Fbank`: Kaldi log-mel filterbanks in numpy; :func:`read_audio`, :func:`resample`;
* :class:`BeamOptions` / :class:`BeamSearch`: flashlight's CTC beam search, with a lexicon and KenLM.
"""

from .audio import BadAudio, read_audio, resample
from .beam import BeamOptions, BeamSearch
from .features import Fbank, FbankStream
from .model import Recognizer, Stream, read_config
from .tokens import TokenTable, greedy_ids, read_tokens, write_tokens
from .transcribe import Result, Utterance, expand_inputs, transcribe_files

__all__ = [
    "BadAudio",
    "BeamOptions",
    "BeamSearch",
    "Fbank",
    "FbankStream",
    "Recognizer",
    "Result",
    "Stream",
    "TokenTable",
    "Utterance",
    "expand_inputs",
    "greedy_ids",
    "read_audio",
    "read_config",
    "read_tokens",
    "resample",
    "transcribe_files",
    "write_tokens",
]
