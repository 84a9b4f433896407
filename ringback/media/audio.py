"""Audio file decode/encode for <Play>, recordings and prompts.

Everything inside ringback is int16, 8 kHz, mono. Decoding goes through
libsndfile (via soundfile) and soxr for anti-aliased resampling.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from ringback.media import g711

RATE = 8000

Pcm = npt.NDArray[np.int16]


class UnsupportedAudio(ValueError):
    """The bytes are not audio in a format we can play."""


_WAV = {"audio/wav", "audio/wave", "audio/x-wav", "audio/vnd.wave", "audio/x-pn-wav"}
_MP3 = {"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg", "audio/x-mpeg-3", "audio/x-mp3"}
_AIFF = {"audio/aiff", "audio/x-aiff", "audio/x-aifc", "audio/aifc"}
_GSM = {"audio/x-gsm", "audio/gsm"}
_ULAW = {"audio/ulaw", "audio/basic", "audio/x-ulaw", "audio/pcmu", "audio/x-mulaw", "audio/mulaw"}
_SNIFF = {None, "", "application/octet-stream", "binary/octet-stream", "audio/x-unknown"}

_GSM_FRAME = 33  # bytes per 20 ms raw GSM 6.10 frame; each starts with the 0xD magic nibble


def _media_type(content_type: str | None) -> str | None:
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower()


def _content_rate(content_type: str | None, default: int) -> int:
    # audio/ulaw may say ;rate=16000
    if not content_type:
        return default
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "rate" and value.strip().isdigit():
            return int(value.strip())
    return default


def _is_raw_gsm(data: bytes) -> bool:
    if not data or len(data) % _GSM_FRAME:
        return False
    return all((b >> 4) == 0xD for b in data[::_GSM_FRAME])


def _sniff(data: bytes) -> str | None:
    head = data[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "container"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "container"
    if head[:4] == b".snd":
        return "container"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0):
        return "mp3"
    if _is_raw_gsm(data):
        return "gsm"
    return None


def _to_mono_8k(samples: npt.NDArray[np.float32], rate: int) -> Pcm:
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if rate != RATE:
        mono = soxr.resample(mono.astype(np.float32), rate, RATE, quality="HQ")
    return np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)


def _read_soundfile(data: bytes, **kwargs: object) -> Pcm:
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True, **kwargs)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise UnsupportedAudio(f"cannot decode audio: {exc}") from exc
    if rate <= 0:
        raise UnsupportedAudio("bad sample rate")
    return _to_mono_8k(samples, int(rate))


def decode(data: bytes, content_type: str | None) -> Pcm:
    """Decode WAV, MP3, AIFF, GSM 6.10 or u-law bytes to int16 8 kHz mono.

    The Content-Type picks the format; without a useful one the bytes are sniffed.
    Raises ``UnsupportedAudio`` for anything else (including a Content-Type that
    is not audio we play, such as text/html).
    """
    if not data:
        raise UnsupportedAudio("empty audio")
    media = _media_type(content_type)
    sniffed = _sniff(data)
    if media in _ULAW and sniffed != "container":
        rate = _content_rate(content_type, RATE)
        pcm = g711.ulaw_decode(data)
        return pcm if rate == RATE else resample(pcm, rate, RATE)
    if media in _GSM and sniffed != "container":
        if not _is_raw_gsm(data):
            raise UnsupportedAudio("not GSM 6.10 frames")
        return _read_soundfile(data, format="RAW", subtype="GSM610", samplerate=RATE, channels=1)
    if media in _WAV or media in _AIFF or media in _GSM or media in _ULAW:
        if sniffed != "container":
            raise UnsupportedAudio(f"{media} body is not a WAV/AIFF/AU container")
        return _read_soundfile(data)
    if media in _MP3:
        return _read_soundfile(data)
    if media in _SNIFF:
        if sniffed == "container":
            return _read_soundfile(data)
        if sniffed == "mp3":
            return _read_soundfile(data)
        if sniffed == "gsm":
            return _read_soundfile(data, format="RAW", subtype="GSM610", samplerate=RATE, channels=1)
    raise UnsupportedAudio(f"unsupported audio type: {content_type!r}")


def encode_wav(pcm: npt.ArrayLike, rate: int = RATE) -> bytes:
    """int16 mono -> 16-bit PCM WAV bytes."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(pcm, dtype=np.int16), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def encode_mp3(pcm: npt.ArrayLike, rate: int = RATE) -> bytes:
    """int16 mono -> MP3 bytes (libsndfile's LAME)."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(pcm, dtype=np.int16), rate, format="MP3")
    return buf.getvalue()


def resample(pcm: npt.ArrayLike, from_rate: int, to_rate: int) -> Pcm:
    """Anti-aliased resampling of int16 mono audio."""
    x = np.asarray(pcm, dtype=np.int16)
    if from_rate == to_rate:
        return x.copy()
    y = soxr.resample(x.astype(np.float32) / 32768.0, from_rate, to_rate, quality="HQ")
    return np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)


def trim_silence(
    pcm: npt.ArrayLike,
    threshold_dbfs: float = -45.0,
    *,
    rate: int = RATE,
    frame_ms: int = 10,
    keep_ms: int = 0,
) -> Pcm:
    """Drop leading and trailing frames whose RMS is below ``threshold_dbfs``.

    ``keep_ms`` of the trimmed silence is kept on each side so speech onsets are
    not clipped. All-silent input returns an empty array.
    """
    x = np.asarray(pcm, dtype=np.int16)
    n = max(1, rate * frame_ms // 1000)
    frames = len(x) // n
    if frames == 0:
        return x[:0].copy() if _dbfs(x) < threshold_dbfs else x.copy()
    blocks = x[: frames * n].reshape(frames, n).astype(np.float64)
    rms = np.sqrt(np.mean(blocks * blocks, axis=1))
    loud = np.flatnonzero(20 * np.log10(np.maximum(rms, 1e-9) / 32768.0) >= threshold_dbfs)
    tail_loud = len(x) > frames * n and _dbfs(x[frames * n :]) >= threshold_dbfs
    if loud.size == 0 and not tail_loud:
        return x[:0].copy()
    start = int(loud[0]) * n if loud.size else frames * n
    end = len(x) if tail_loud else (int(loud[-1]) + 1) * n
    keep = rate * keep_ms // 1000
    return x[max(0, start - keep) : min(len(x), end + keep)].copy()


def _dbfs(x: npt.NDArray[np.int16]) -> float:
    if x.size == 0:
        return -200.0
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return 20 * np.log10(max(rms, 1e-9) / 32768.0)
