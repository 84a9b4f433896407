import numpy as np
import pytest

from ringback.media import g711


def _ref_ulaw_encode(x: int) -> int:
    # straight scalar transcription of the G.711 u-law segment rule
    sign = 0x80 if x < 0 else 0
    mag = min(abs(x), 32635) + 0x84
    exp = 7
    for e in range(8):
        if mag < (0x100 << e):
            exp = e
            break
    mant = (mag >> (exp + 3)) & 0xF
    return ~(sign | (exp << 4) | mant) & 0xFF


def _ref_alaw_decode(code: int) -> int:
    a = code ^ 0x55
    mant = a & 0xF
    seg = (a >> 4) & 7
    mag = (mant << 4) + 8 if seg == 0 else ((mant << 4) + 0x108) << (seg - 1)
    return mag if a & 0x80 else -mag


def test_known_values():
    assert g711.ulaw_encode(np.int16(0)) == 0xFF
    assert list(g711.ulaw_decode(bytes([0x00, 0x80, 0xFF]))) == [-32124, 32124, 0]
    assert g711.alaw_encode(np.int16(0)) == 0xD5
    assert list(g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))) == [8, -8, 32256, -32256]
    assert g711.silence_code(0) == 0xFF and g711.silence_code(8) == 0xD5


def test_ulaw_matches_scalar_reference_everywhere():
    xs = np.arange(-32768, 32768, 7, dtype=np.int16)
    ref = np.array([_ref_ulaw_encode(int(x)) for x in xs], dtype=np.uint8)
    assert np.array_equal(g711.ulaw_encode(xs), ref)


def test_alaw_decode_matches_scalar_reference():
    ref = [_ref_alaw_decode(c) for c in range(256)]
    assert list(g711.alaw_decode(np.arange(256, dtype=np.uint8))) == ref


@pytest.mark.parametrize("enc,dec", [(g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)])
def test_codes_round_trip(enc, dec):
    codes = np.arange(256, dtype=np.uint8)
    back = enc(dec(codes))
    mismatches = np.flatnonzero(back != codes)
    # u-law has two zeros (0x7F and 0xFF); everything else is a fixed point
    assert set(mismatches.tolist()) <= {0x7F}


@pytest.mark.parametrize("pt", [0, 8])
def test_quantisation_error_follows_companding_law(pt):
    x = np.arange(-32000, 32000, dtype=np.int16)
    y = g711.decode(g711.encode(x, pt), pt).astype(np.float64)
    err = np.abs(y - x)
    mag = np.abs(x.astype(np.float64))
    # logarithmic law: error is bounded by a relative step (1/32 of the biased magnitude) plus a floor
    assert np.all(err <= np.maximum((mag + 132) / 31, 8) + 1)
    # monotonic: a larger input never decodes smaller
    assert np.all(np.diff(y) >= 0)


def test_two_dimensional_batches():
    rng = np.random.default_rng(1)
    frames = rng.integers(-20000, 20000, size=(50, 160), dtype=np.int16)
    for pt in (0, 8):
        codes = g711.encode(frames, pt)
        assert codes.shape == (50, 160) and codes.dtype == np.uint8
        snr = 10 * np.log10(np.sum(frames.astype(float) ** 2) / np.sum((g711.decode(codes, pt) - frames.astype(float)) ** 2))
        assert snr > 30  # G.711 gives ~38 dB on loud signals


def test_bytes_input_and_bad_payload_type():
    assert g711.decode(b"\xff" * 160, 0).shape == (160,)
    with pytest.raises(ValueError):
        g711.encode(np.zeros(4, np.int16), 18)
