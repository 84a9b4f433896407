import asyncio
import threading

import numpy as np
import pytest

import ringback.tts as tts
from ringback.tts.voices import UnknownVoice, espeak_voice_name


def _dominant_pitch_hz(x: np.ndarray, sr: int = 8000) -> float:
    # First strong autocorrelation peak in the middle half (60..400 Hz): enough to rank voices.
    f = x.astype(np.float64)
    seg = f[f.size // 4 : 3 * f.size // 4]
    seg = seg - seg.mean()
    ac = np.correlate(seg, seg, "full")[seg.size - 1 :]
    ac /= ac[0]
    lo, hi = sr // 400, sr // 60
    a = ac[lo:hi]
    thr = 0.8 * a.max()
    for i in range(1, a.size - 1):
        if a[i] >= thr and a[i] >= a[i - 1] and a[i] >= a[i + 1]:
            return sr / (lo + i)
    raise AssertionError("no pitch found")


def test_synth_returns_8khz_int16_speech() -> None:
    pcm = tts.synth("Hello, this is a test.")
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    # About 1-2.5 s of speech at 8 kHz, and it is not silence.
    assert 8000 < pcm.size < 20000
    assert np.abs(pcm).max() > 3000
    # Band-limited to below 4 kHz by the resampler: energy mostly under 3.4 kHz.
    spec = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(pcm.size, 1 / 8000)
    assert spec[freqs < 3400].sum() > 0.95 * spec.sum()


def test_cache_returns_same_read_only_array() -> None:
    a = tts.synth("Cache me please", voice="woman")
    b = tts.synth("Cache me please", voice="woman")
    assert a is b
    assert not a.flags.writeable
    c = tts.synth("Cache me please", voice="man")
    assert c is not a


@pytest.mark.parametrize("language", ["en", "es", "fr", "de"])
@pytest.mark.parametrize("voice", ["man", "woman"])
def test_all_twiml_voices(voice: str, language: str) -> None:
    pcm = tts.synth("Hello, goodbye", voice=voice, language=language)
    assert pcm.size > 4000


def test_woman_is_higher_pitched_than_man() -> None:
    man = tts.synth("Aaaaah", voice="man", rate=90)
    woman = tts.synth("Aaaaah", voice="woman", rate=90)
    assert _dominant_pitch_hz(woman) > _dominant_pitch_hz(man) * 1.3


def test_rate_changes_duration() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    slow = tts.synth(text, rate=100)
    fast = tts.synth(text, rate=300)
    assert slow.size > 2 * fast.size


def test_pitch_changes_pitch() -> None:
    low = tts.synth("Aaaaah", voice="woman", rate=90, pitch=20)
    high = tts.synth("Aaaaah", voice="woman", rate=90, pitch=90)
    assert _dominant_pitch_hz(high) > 1.5 * _dominant_pitch_hz(low)


def test_variant_overrides_voice() -> None:
    assert espeak_voice_name("man", "en", "klatt3") == "en-us+klatt3"
    assert espeak_voice_name("woman", "de") == "de+f3"
    a = tts.synth("Variant test", variant="klatt3")
    b = tts.synth("Variant test")
    assert a.size != b.size or not np.array_equal(a, b)


def test_empty_text_is_empty_audio() -> None:
    assert tts.synth("   ").size == 0


def test_unknown_voice_and_language_rejected() -> None:
    with pytest.raises(UnknownVoice):
        tts.synth("x", voice="robot")
    with pytest.raises(UnknownVoice):
        tts.synth("x", language="../../etc")
    with pytest.raises(tts.EspeakError):
        tts.synth("x", language="zz-nowhere")


def test_untrusted_markup_is_spoken_not_interpreted() -> None:
    # No SSML flag: tags are just text, and nothing crashes.
    pcm = tts.synth("<speak><break time='10s'/></speak> hello")
    assert 0 < pcm.size < 8000 * 8


def test_thread_safe_under_concurrency() -> None:
    tts.cache_clear()
    texts = ["Hello" + " and more" * i for i in range(12)]  # lengths differ: splices would show
    serial = {t: np.array(tts.synth(t)) for t in texts}
    tts.cache_clear()
    results: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(t: str) -> None:
        try:
            results[t] = np.array(tts.synth(t))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in texts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    # espeak keeps a little jitter state between calls, so compare shape and loudness, not bits:
    # interleaved (unlocked) calls would swap or splice the audio of different texts.
    for t in texts:
        assert abs(results[t].size - serial[t].size) < 0.02 * serial[t].size
        ra = float(np.sqrt(np.mean(results[t].astype(np.float64) ** 2)))
        sa = float(np.sqrt(np.mean(serial[t].astype(np.float64) ** 2)))
        assert abs(ra - sa) < 0.1 * sa


async def test_usable_from_asyncio_to_thread() -> None:
    pcms = await asyncio.gather(*(asyncio.to_thread(tts.synth, f"Async {i}") for i in range(4)))
    assert all(p.size > 2000 for p in pcms)
