"""Speech synthesis: espeak-ng (from the ``espeakng-loader`` wheel) at 8 kHz, cached.

``synth(text, voice=..., language=...)`` returns int16 mono samples at 8 kHz. It is thread-safe
(espeak-ng runs under a lock, so ``asyncio.to_thread(synth, ...)`` is fine) and results are kept in
an in-memory LRU cache keyed by every argument. Returned arrays are read-only because they are shared
through the cache: copy before modifying.

espeak-ng carries a little random jitter state from one utterance to the next, so the same
arguments give the same audio only for the same sequence of calls in a fresh process (the AMD
corpus is built that way); lengths differ by a few samples otherwise.
"""

from __future__ import annotations

import functools

import numpy as np
import soxr

from ringback.tts.espeak import EspeakError, engine
from ringback.tts.voices import (
    DEFAULT_PITCH,
    DEFAULT_RATE,
    LANGUAGES,
    VOICES,
    UnknownVoice,
    espeak_voice_name,
)

__all__ = [
    "SAMPLE_RATE",
    "LANGUAGES",
    "VOICES",
    "EspeakError",
    "UnknownVoice",
    "cache_clear",
    "synth",
]

SAMPLE_RATE = 8000
CACHE_SIZE = 512


def synth(
    text: str,
    *,
    voice: str = "man",
    language: str = "en",
    rate: int | None = None,
    pitch: int | None = None,
    variant: str | None = None,
) -> np.ndarray:
    """Speak ``text``: int16 mono at 8 kHz (read-only, shared via the cache).

    ``voice`` is TwiML's man/woman, ``language`` en/es/fr/de (or any espeak-ng language name),
    ``rate`` words per minute (80..450), ``pitch`` 0..100, ``variant`` an espeak-ng variant such as
    ``"f2"`` or ``"klatt3"`` that overrides the one ``voice`` picks.
    """
    return _synth_cached(text, voice, language, rate, pitch, variant)


def cache_clear() -> None:
    _synth_cached.cache_clear()


@functools.lru_cache(maxsize=CACHE_SIZE)
def _synth_cached(
    text: str, voice: str, language: str, rate: int | None, pitch: int | None, variant: str | None
) -> np.ndarray:
    name = espeak_voice_name(voice, language, variant)
    r = DEFAULT_RATE if rate is None else max(80, min(450, int(rate)))
    p = DEFAULT_PITCH if pitch is None else max(0, min(100, int(pitch)))
    eng = engine()
    pcm = eng.synth(text, name, r, p) if text.strip() else np.zeros(0, dtype=np.int16)
    if pcm.size == 0:
        out = np.zeros(0, dtype=np.int16)
    else:
        # soxr's anti-aliasing filter: naive decimation would fold 4-11 kHz into the band.
        y = soxr.resample(pcm.astype(np.float32) / 32768.0, eng.sample_rate, SAMPLE_RATE, quality="HQ")
        out = np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)
    out.setflags(write=False)
    return out
