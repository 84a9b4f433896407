import numpy as np

from ringback.media import tones


def _peak_freqs(x: np.ndarray, k: int) -> list[float]:
    spec = np.abs(np.fft.rfft(x.astype(float) * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    idx = []
    for i in np.argsort(spec)[::-1]:
        if all(abs(i - j) > 3 for j in idx):
            idx.append(i)
        if len(idx) == k:
            break
    return sorted(float(freqs[i]) for i in idx)


def test_dbm0_scale():
    assert abs(tones.dbm0_to_amplitude(3.14) - 32767) < 1
    assert abs(tones.amplitude_to_dbm0(tones.dbm0_to_amplitude(-10)) + 10) < 1e-9


def test_beep_frequency_length_level():
    b = tones.beep(1000, 500, -10)
    assert b.dtype == np.int16 and len(b) == 4000
    assert abs(_peak_freqs(b, 1)[0] - 1000) < 3
    mid = b[400:-400].astype(float)
    assert abs(tones.amplitude_to_dbm0(np.sqrt(2 * np.mean(mid**2))) + 10) < 0.2


def test_ringback_and_busy_cadence():
    r = tones.ringback(6000)
    assert len(r) == 48000
    on, off = r[:16000], r[16000:48000]
    assert np.all(off == 0) and np.abs(on[800:15000]).min() >= 0
    assert [round(f) for f in _peak_freqs(on[400:15600], 2)] == [440, 480]
    b = tones.busy(2000)
    assert [round(f) for f in _peak_freqs(b[200:3800], 2)] == [480, 620]
    assert np.all(b[4000:8000] == 0) and np.abs(b[8200:11800]).max() > 1000


def test_hold_music_loops_and_is_quiet():
    h = tones.hold_music(16)
    assert h.dtype == np.int16 and len(h) == 16 * 8000
    assert tones.amplitude_to_dbm0(float(np.abs(h).max())) <= -19.9
    # the loop seam is smooth: the last and first samples are both near silence
    assert abs(int(h[-1])) < 200 and abs(int(h[0])) < 200
    assert len(tones.silence(20)) == 160 and not tones.silence(20).any()
