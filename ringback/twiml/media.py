"""The audio the verbs need, over the other media modules.

Speech comes from ringback.tts, file decoding and silence trimming from
ringback.media.audio.  The Record beep and the Conference hold sound come from
ringback.media.tones when it exists; small local generators stand in until
then, so the interpreter never depends on a module that is not there yet.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections import OrderedDict

import numpy as np

from ringback.twiml.channel import Pcm

RATE = 8000
APPLICATION_ERROR_TEXT = "An application error has occurred."


async def speak(text: str, voice: str = "man", language: str = "en") -> Pcm:
    from ringback.tts import synth

    # synth is cached and thread-safe; a thread keeps new text off the loop.
    return await asyncio.to_thread(synth, text, voice=voice, language=language)


class DecodeError(ValueError):
    pass


_decoded: OrderedDict[bytes, Pcm] = OrderedDict()
_DECODED_MAX = 64


def decode(data: bytes, content_type: str) -> Pcm:
    """Audio bytes -> int16 8 kHz mono, memoised by content (Play of a cached
    file must start fast)."""
    from ringback.media.audio import decode as decode_audio

    key = hashlib.blake2b(data, digest_size=16).digest() + content_type.encode()
    pcm = _decoded.get(key)
    if pcm is not None:
        _decoded.move_to_end(key)
        return pcm
    try:
        pcm = np.asarray(decode_audio(data, content_type), dtype=np.int16)
    except Exception as e:  # any decoder failure is the app's bad file
        raise DecodeError(str(e)) from e
    pcm.flags.writeable = False
    _decoded[key] = pcm
    while len(_decoded) > _DECODED_MAX:
        _decoded.popitem(last=False)
    return pcm


def trim(pcm: Pcm) -> Pcm:
    from ringback.media.audio import trim_silence

    return trim_silence(pcm, keep_ms=100)


def frame_dbfs(frame: Pcm) -> float:
    if frame.size == 0:
        return -200.0
    x = frame.astype(np.float64)
    rms = float(np.sqrt(np.mean(x * x)))
    return 20 * np.log10(max(rms, 1e-9) / 32768.0)


@functools.cache
def beep() -> Pcm:
    try:
        from ringback.media import tones  # type: ignore[attr-defined]

        return np.asarray(tones.beep(), dtype=np.int16)
    except (ImportError, AttributeError, TypeError):
        pass
    # 1 kHz for 250 ms with 10 ms ramps (no clicks).
    t = np.arange(int(RATE * 0.25)) / RATE
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    pcm = (np.sin(2 * np.pi * 1000 * t) * env * 0.4 * 32767).astype(np.int16)
    pcm.flags.writeable = False
    return pcm


@functools.cache
def hold_music() -> Pcm:
    try:
        from ringback.media import tones  # type: ignore[attr-defined]

        return np.asarray(tones.hold_music(), dtype=np.int16)
    except (ImportError, AttributeError, TypeError):
        pass
    # A gentle arpeggio, 4 s, loops cleanly.
    notes = [261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 261.63, 196.0]
    seg = int(RATE * 0.5)
    t = np.arange(seg) / RATE
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.03)
    parts = [np.sin(2 * np.pi * f * t) * env for f in notes]
    pcm = (np.concatenate(parts) * 0.2 * 32767).astype(np.int16)
    pcm.flags.writeable = False
    return pcm


def silence(seconds: float) -> Pcm:
    return np.zeros(int(RATE * seconds), dtype=np.int16)
