"""G.711 PCMU (u-law) and PCMA (A-law) by numpy lookup tables.

All functions accept arrays of any shape (e.g. ``(n_calls, 160)``) so a whole
tick of many calls is converted with one fancy-indexing operation.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PCMU = 0  # static RTP payload type for u-law
PCMA = 8  # static RTP payload type for A-law

_BIAS = 0x84
_CLIP = 32635


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    sign = (x < 0).astype(np.int32) << 7
    mag = np.minimum(np.abs(x), _CLIP) + _BIAS
    # exponent = position of the highest set bit above bit 7
    exp = np.clip(np.floor(np.log2(mag)).astype(np.int32) - 7, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    code = ~(sign | (exp << 4) | mant) & 0xFF
    # index by the int16 bit pattern viewed as uint16
    return np.roll(code.astype(np.uint8), -32768)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exp = (u >> 4) & 0x07
    mant = u & 0x0F
    mag = (((mant << 3) + _BIAS) << exp) - _BIAS
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    p = x >> 3  # A-law works on 13 bits
    neg = p < 0
    p = np.where(neg, -p - 1, p)
    mask = np.where(neg, 0x55, 0xD5)
    seg = np.searchsorted(_SEG_AEND, p, side="left").astype(np.int32)
    low = np.where(seg < 2, (p >> 1) & 0x0F, (p >> np.maximum(seg, 1)) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | low)
    return np.roll((aval ^ mask).astype(np.uint8), -32768)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


ULAW_ENCODE = _build_ulaw_encode()
ULAW_DECODE = _build_ulaw_decode()
ALAW_ENCODE = _build_alaw_encode()
ALAW_DECODE = _build_alaw_decode()
for _t in (ULAW_ENCODE, ULAW_DECODE, ALAW_ENCODE, ALAW_DECODE):
    _t.flags.writeable = False


def _as_codes(data: bytes | bytearray | memoryview | npt.ArrayLike) -> npt.NDArray[np.uint8]:
    if isinstance(data, bytes | bytearray | memoryview):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8)


def ulaw_encode(pcm: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """int16 samples (any shape) -> u-law codes (same shape)."""
    return ULAW_ENCODE[np.asarray(pcm, dtype=np.int16).view(np.uint16)]


def ulaw_decode(codes: bytes | npt.ArrayLike) -> npt.NDArray[np.int16]:
    """u-law codes (bytes or uint8 array, any shape) -> int16 samples."""
    return ULAW_DECODE[_as_codes(codes)]


def alaw_encode(pcm: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """int16 samples (any shape) -> A-law codes (same shape)."""
    return ALAW_ENCODE[np.asarray(pcm, dtype=np.int16).view(np.uint16)]


def alaw_decode(codes: bytes | npt.ArrayLike) -> npt.NDArray[np.int16]:
    """A-law codes (bytes or uint8 array, any shape) -> int16 samples."""
    return ALAW_DECODE[_as_codes(codes)]


def encode(pcm: npt.ArrayLike, payload_type: int) -> npt.NDArray[np.uint8]:
    """Encode for RTP payload type 0 (PCMU) or 8 (PCMA)."""
    if payload_type == PCMU:
        return ulaw_encode(pcm)
    if payload_type == PCMA:
        return alaw_encode(pcm)
    raise ValueError(f"not a G.711 payload type: {payload_type}")


def decode(codes: bytes | npt.ArrayLike, payload_type: int) -> npt.NDArray[np.int16]:
    """Decode RTP payload type 0 (PCMU) or 8 (PCMA)."""
    if payload_type == PCMU:
        return ulaw_decode(codes)
    if payload_type == PCMA:
        return alaw_decode(codes)
    raise ValueError(f"not a G.711 payload type: {payload_type}")


def silence_code(payload_type: int) -> int:
    """The code byte for digital silence (fills lost frames without decoding)."""
    return int(encode(np.zeros(1, np.int16), payload_type)[0])
