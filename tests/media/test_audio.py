import io

import numpy as np
import pytest
import soundfile as sf

from ringback.media import audio, g711


def _tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.sin(2 * np.pi * freq * t) * amp


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a = a[:n].astype(float)
    b = b[:n].astype(float)
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


def _container(x: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


REF = (_tone(440, 1.0, 8000) * 32767).astype(np.int16)


@pytest.mark.parametrize("ctype", ["audio/wav", "audio/x-wav; charset=binary", None, "application/octet-stream"])
def test_wav_44k_stereo_resampled_to_8k_mono(ctype):
    x = _tone(440, 1.0, 44100)
    data = _container(np.stack([x, x], axis=1), 44100, "WAV", "PCM_16")
    pcm = audio.decode(data, ctype)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert abs(len(pcm) - 8000) <= 2
    assert _corr(pcm, REF) > 0.99


def test_resampling_is_anti_aliased():
    # a 6 kHz tone at 44.1 kHz is above 8 kHz Nyquist: it must vanish, not fold to 2 kHz
    data = _container(_tone(6000, 1.0, 44100), 44100, "WAV", "PCM_16")
    pcm = audio.decode(data, "audio/wav").astype(float)
    assert np.sqrt(np.mean(pcm[400:-400] ** 2)) < 0.001 * 32768


def test_mp3_round_trip():
    mp3 = audio.encode_mp3(REF)
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    for ctype in ("audio/mpeg", None):
        pcm = audio.decode(mp3, ctype)
        # MP3 adds encoder delay: compare by best lag
        c = np.correlate(pcm[:4000].astype(float), REF[1000:2000].astype(float), "valid")
        assert c.max() / (np.linalg.norm(REF[1000:2000]) ** 2) > 0.8


def test_aiff_and_au():
    aiff = _container(REF, 8000, "AIFF", "PCM_16")
    assert _corr(audio.decode(aiff, "audio/x-aiff"), REF) > 0.999
    au = _container(REF, 8000, "AU", "ULAW")
    assert _corr(audio.decode(au, "audio/basic"), REF) > 0.99


def test_gsm_raw_and_in_wav():
    raw = _container(REF, 8000, "RAW", "GSM610")
    for ctype in ("audio/x-gsm", "audio/gsm", None):
        assert _corr(audio.decode(raw, ctype), REF) > 0.9
    wav = _container(REF, 8000, "WAV", "GSM610")
    assert _corr(audio.decode(wav, "audio/wav"), REF) > 0.9


def test_raw_ulaw():
    data = g711.ulaw_encode(REF).tobytes()
    pcm = audio.decode(data, "audio/ulaw")
    assert len(pcm) == 8000 and _corr(pcm, REF) > 0.999
    up = audio.decode(g711.ulaw_encode(audio.resample(REF, 8000, 16000)).tobytes(), "audio/ulaw;rate=16000")
    assert abs(len(up) - 8000) <= 2 and _corr(up, REF) > 0.99


@pytest.mark.parametrize(
    "data,ctype",
    [
        (b"<html>hello</html>", "text/html"),
        (b"<Response/>", "text/xml"),
        (b"", "audio/wav"),
        (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", "audio/wav"),
        (b"not a wav at all", "audio/wav"),
        (b"\x00" * 100, None),
        (b"OggS" + b"\x00" * 100, "audio/ogg"),
        (b"\x12" * 66, "audio/x-gsm"),
    ],
)
def test_unsupported_raises(data, ctype):
    with pytest.raises(audio.UnsupportedAudio):
        audio.decode(data, ctype)


def test_encode_wav_round_trip_exact():
    wav = audio.encode_wav(REF)
    assert wav[:4] == b"RIFF"
    back, rate = sf.read(io.BytesIO(wav), dtype="int16")
    assert rate == 8000 and np.array_equal(back, REF)
    assert np.array_equal(audio.decode(wav, "audio/wav"), REF)


def test_trim_silence():
    silence = np.zeros(4000, np.int16)
    noise = (np.random.default_rng(0).normal(0, 3, 4000)).astype(np.int16)  # ~-80 dBFS hiss
    x = np.concatenate([silence, noise, REF, noise, silence])
    out = audio.trim_silence(x, -45.0)
    assert abs(len(out) - len(REF)) <= 80
    assert _corr(out[: len(REF)], REF[: len(out)]) > 0.99
    kept = audio.trim_silence(x, -45.0, keep_ms=100)
    assert len(kept) == len(out) + 1600
    assert len(audio.trim_silence(silence, -45.0)) == 0
    assert len(audio.trim_silence(np.zeros(0, np.int16))) == 0


def test_resample_identity_and_ratio():
    assert np.array_equal(audio.resample(REF, 8000, 8000), REF)
    assert abs(len(audio.resample(REF, 8000, 22050)) - 22050) <= 2
