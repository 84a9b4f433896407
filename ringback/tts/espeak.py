"""ctypes binding to the libespeak-ng shipped by the PyPI ``espeakng-loader`` wheel.

Only what synthesis needs. espeak-ng keeps global state and is not reentrant, so every call
into it goes through ``EspeakEngine``, which serialises them with a lock.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import espeakng_loader
import numpy as np

# espeak_AUDIO_OUTPUT: synchronous = espeak_Synth returns when all audio went to the callback.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
# espeak_PARAMETER
_RATE = 1
_PITCH = 3
# espeak_POSITION_TYPE
_POS_CHARACTER = 1
# Synth flags: text is UTF-8 (no SSML, no phoneme input: TwiML text is untrusted).
_CHARS_UTF8 = 1
_EE_OK = 0
_SEED = 20080801

# int callback(short *wav, int numsamples, espeak_EVENT *events); return 0 to continue.
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    """espeak-ng refused a voice, a parameter or a text."""


class EspeakEngine:
    """One process-wide espeak-ng instance; thread-safe through a lock."""

    def __init__(self, library: str | None = None, data_path: str | None = None) -> None:
        self._lock = threading.Lock()
        lib_path = library or espeakng_loader.get_library_path()
        data = data_path or espeakng_loader.get_data_path()
        self._lib = ctypes.CDLL(lib_path)
        self._declare()
        self._chunks: list[np.ndarray] = []
        # Kept on self: ctypes callbacks die with their Python object.
        self._callback = _SynthCallback(self._on_audio)
        # espeak accepts either the espeak-ng-data directory or its parent.
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(Path(data)).encode(), 0)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({rate}); data path {data}")
        self.sample_rate: int = int(rate)
        self._lib.espeak_SetSynthCallback(self._callback)

    def _declare(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None

    def _on_audio(self, wav: ctypes._Pointer, numsamples: int, _events: int) -> int:
        if numsamples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0

    def synth(self, text: str, voice_name: str, rate: int, pitch: int) -> np.ndarray:
        """Speak ``text`` with espeak voice ``voice_name`` (e.g. ``en-us+f3``): int16 at ``sample_rate``."""
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice_name.encode()) != _EE_OK:
                raise EspeakError(f"unknown espeak voice {voice_name!r}")
            # Set every time: a voice change resets rate and pitch to the voice's defaults.
            self._lib.espeak_SetParameter(_RATE, int(rate), 0)
            self._lib.espeak_SetParameter(_PITCH, int(pitch), 0)
            # espeak adds random jitter; a fixed seed makes the same arguments give the same audio
            # (the cache and the AMD corpus rely on it).
            self._lib.espeak_ng_SetRandSeed(_SEED)
            self._chunks = []
            buf = ctypes.create_string_buffer(data, len(data))
            err = self._lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            chunks, self._chunks = self._chunks, []
        if err != _EE_OK:
            raise EspeakError(f"espeak_Synth failed ({err})")
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks).astype(np.int16, copy=False)


_engine: EspeakEngine | None = None
_engine_lock = threading.Lock()


def engine() -> EspeakEngine:
    """The shared engine, created on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = EspeakEngine()
        return _engine
