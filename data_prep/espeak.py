"""A minimal ctypes binding of espeak-ng (the library and voices inside the ``espeakng-loader`` wheel).

One synthesiser per process (espeak-ng keeps global state); ``Espeak().say(text, voice, rate, pitch)``
returns int16 samples at ``Espeak.SAMPLING_RATE`` (22,050 Hz). Deterministic for equal arguments.
``Espeak().phonemes(word, voice)`` is espeak-ng's grapheme-to-phoneme conversion (IPA phones).
"""

from __future__ import annotations

import ctypes

import numpy as np

from toolkit.errors import UserError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4
_PHONEME_IPA = 0x02
_STRESS = str.maketrans("", "", "ˈˌ")  # primary / secondary stress: marks on syllables, not phones
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class Espeak:
    SAMPLING_RATE = 22050  # espeak-ng's only output rate
    _lib = None

    def __init__(self) -> None:
        if Espeak._lib is None:
            try:
                import espeakng_loader

                lib = ctypes.CDLL(espeakng_loader.get_library_path())
                data = espeakng_loader.get_data_path().encode()
            except (ImportError, OSError, RuntimeError) as err:
                raise UserError(f"espeak-ng is unavailable ({err}); `pip install espeakng-loader`") from None
            lib.espeak_Initialize.restype = ctypes.c_int
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
            if rate != Espeak.SAMPLING_RATE:
                raise UserError(f"espeak-ng failed to initialise (rate {rate}): its voice data is missing or broken")
            lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
            lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
            Espeak._lib = lib
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept on self: ctypes must not free it
        Espeak._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n, _events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def phonemes(self, text: str, voice: str = "en-us") -> list[str]:
        """``text``'s pronunciation as IPA phones (stress marks dropped), e.g. "judge" -> ["dʒ", "ʌ", "dʒ"].

        espeak-ng's own rules and dictionary, as its synthesiser would say the text; deterministic.
        """
        lib = Espeak._lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise UserError(f"espeak-ng has no voice {voice!r}")
        buf = ctypes.create_string_buffer(text.encode("utf-8") + b"\0")
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        phones: list[str] = []
        while ptr.value:  # one clause per call; espeak-ng moves the pointer on, NULL at the end
            out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, _PHONEME_IPA | (ord("_") << 8))
            if out:
                phones += [p for p in out.decode("utf-8").translate(_STRESS).replace(" ", "_").split("_") if p]
        return phones

    def say(self, text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50,
            pitch_range: int = 50, seed: int = 0) -> np.ndarray:
        """Speak ``text`` with ``voice`` (``lang+variant``), ``rate`` words/min, ``pitch`` 0-100.

        espeak-ng jitters timing and pitch with its own random generator; seeding it per call makes
        the samples a function of the arguments alone.
        """
        lib = Espeak._lib
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed(ctypes.c_int(seed & 0x7FFFFFFF))
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise UserError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range)):
            lib.espeak_SetParameter(param, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        lib.espeak_Synth(ctypes.c_char_p(data), ctypes.c_size_t(len(data)), 0, 0, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)


def speak_fresh(jobs: list[tuple[str, str, int, int, int]]) -> list[np.ndarray]:
    """Speak ``(text, voice, rate, pitch, seed)`` items in order in a new Python process.

    espeak-ng carries state from one utterance to the next (e.g. its pitch flutter phase), so the
    samples are reproducible only for the same sequence in a fresh process. A plain subprocess (not
    multiprocessing) is used: it needs no ``__main__`` guard in the caller's script and imports no torch.
    """
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "data_prep.espeak"], input=json.dumps(jobs).encode(),
                          capture_output=True, check=False)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(f"espeak-ng worker failed: {msg[-1] if msg else proc.returncode}")
    head, _, body = proc.stdout.partition(b"\n")
    out, pos = [], 0
    for n in json.loads(head):
        out.append(np.frombuffer(body, dtype=np.int16, count=n, offset=pos).copy())
        pos += 2 * n
    return out


def _worker() -> None:
    import json
    import sys

    jobs = json.loads(sys.stdin.buffer.read())
    engine = Espeak()
    waves = [engine.say(text, voice, rate, pitch, seed=seed) for text, voice, rate, pitch, seed in jobs]
    sys.stdout.buffer.write(json.dumps([int(w.size) for w in waves]).encode() + b"\n")
    for w in waves:
        sys.stdout.buffer.write(w.astype("<i2").tobytes())


if __name__ == "__main__":
    _worker()
