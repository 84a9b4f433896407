"""ITU-T Q.24 limits (telephony-anchors.md §5.1) on generated tones with explicit dBm0 levels."""

import numpy as np
import pytest

from ringback.media import dtmf
from ringback.media.tones import dbm0_to_amplitude

DIGITS = "123A456B789C*0#D"
OFFSETS = range(0, 102, 17)  # where the tone starts relative to the 102-sample block grid


def two_tone(digit: str, ms: float, *, row_db: float = -10.0, col_db: float = -10.0,
             row_dev: float = 0.0, col_dev: float = 0.0, lead: int = 0, noise_db: float | None = None,
             seed: int = 0) -> np.ndarray:
    fr, fc = dtmf.digit_frequencies(digit)
    n = round(ms * 8)
    t = np.arange(n) / 8000
    rng = np.random.default_rng(seed)
    ph = rng.uniform(0, 2 * np.pi, 2)
    x = dbm0_to_amplitude(row_db) * np.sin(2 * np.pi * fr * (1 + row_dev) * t + ph[0])
    x += dbm0_to_amplitude(col_db) * np.sin(2 * np.pi * fc * (1 + col_dev) * t + ph[1])
    x = np.concatenate([np.zeros(lead + 400), x, np.zeros(800)])
    if noise_db is not None:
        x += rng.normal(0, dbm0_to_amplitude(noise_db) / np.sqrt(2), len(x))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def test_all_digits_nominal():
    assert dtmf.detect(dtmf.tones(DIGITS)) == DIGITS


@pytest.mark.parametrize("dev", [0.015, -0.015])
def test_accepts_frequency_deviation_1_5_percent(dev):
    for d in DIGITS:
        for lead in OFFSETS:
            for row_dev, col_dev in ((dev, dev), (dev, -dev), (dev, 0.0), (0.0, dev)):
                x = two_tone(d, 50, row_dev=row_dev, col_dev=col_dev, lead=lead)
                assert dtmf.detect(x) == d, (d, lead, row_dev, col_dev)


@pytest.mark.parametrize("dev", [0.035, -0.035])
def test_rejects_frequency_deviation_3_5_percent(dev):
    for d in DIGITS:
        for lead in OFFSETS:
            assert dtmf.detect(two_tone(d, 80, row_dev=dev, lead=lead)) == "", (d, lead, "row")
            assert dtmf.detect(two_tone(d, 80, col_dev=dev, lead=lead)) == "", (d, lead, "col")


def test_accepts_40_ms_rejects_23_ms():
    for d in DIGITS:
        for lead in range(0, 102, 7):
            assert dtmf.detect(two_tone(d, 40, lead=lead, seed=lead)) == d, (d, lead)
            assert dtmf.detect(two_tone(d, 23, lead=lead, seed=lead)) == "", (d, lead)


@pytest.mark.parametrize("level", [0.0, -25.0])
def test_accepts_operating_levels(level):
    for d in DIGITS:
        for lead in OFFSETS:
            assert dtmf.detect(two_tone(d, 50, row_db=level, col_db=level, lead=lead)) == d, (d, lead)


def test_rejects_non_operate_level():
    for d in DIGITS:
        assert dtmf.detect(two_tone(d, 200, row_db=-55.0, col_db=-55.0)) == ""
        # just under the -42 dBm0 threshold is not a digit either
        assert dtmf.detect(two_tone(d, 200, row_db=-43.5, col_db=-43.5)) == ""


def test_twist_limits():
    for d in DIGITS:
        for lead in OFFSETS:
            # normal twist: row (low group) louder by up to 8 dB
            assert dtmf.detect(two_tone(d, 50, row_db=-6.0, col_db=-13.5, lead=lead)) == d
            # reverse twist: column (high group) louder by up to 4 dB
            assert dtmf.detect(two_tone(d, 50, row_db=-13.5, col_db=-10.0, lead=lead)) == d
        assert dtmf.detect(two_tone(d, 100, row_db=-6.0, col_db=-16.0)) == ""
        assert dtmf.detect(two_tone(d, 100, row_db=-16.0, col_db=-10.0)) == ""


def test_pause_40_ms_separates_repeated_digits_and_10_ms_break_is_bridged():
    for d in "159#":
        for lead in OFFSETS:
            on = two_tone(d, 50, seed=lead)[400:800]
            x = np.concatenate([np.zeros(lead, np.int16), on, np.zeros(320, np.int16), on, np.zeros(800, np.int16)])
            assert dtmf.detect(x) == d + d, (d, lead)
            broken = np.concatenate([np.zeros(lead, np.int16), on, np.zeros(80, np.int16), on, np.zeros(800, np.int16)])
            assert dtmf.detect(broken) == d, (d, lead)


def test_detects_in_noise_at_20_db_snr():
    for d in DIGITS:
        assert dtmf.detect(two_tone(d, 60, row_db=-20, col_db=-20, noise_db=-37, seed=3)) == d


def test_silence_and_single_tones_are_not_digits():
    assert dtmf.detect(np.zeros(8000, np.int16)) == ""
    t = np.arange(8000) / 8000
    for f in dtmf.ROWS + dtmf.COLS + (1000.0, 440.0):
        assert dtmf.detect((8000 * np.sin(2 * np.pi * f * t)).astype(np.int16)) == ""


def test_vectorised_bank_matches_single_stream():
    rng = np.random.default_rng(7)
    seqs = ["".join(rng.choice(list(DIGITS), 5)) for _ in range(12)]
    sigs = [dtmf.tones(s, on_ms=60, off_ms=60, level_dbm0=-15) for s in seqs]
    n = max(len(s) for s in sigs) + 800
    n += (-n) % 160
    batch = np.zeros((len(sigs), n), np.int16)
    for i, s in enumerate(sigs):
        lead = int(rng.integers(0, 300))
        batch[i, lead : lead + len(s)] = s
    det = dtmf.DtmfDetector(len(sigs))
    got = [""] * len(sigs)
    for k in range(0, n, 160):
        for i, d in det.process(batch[:, k : k + 160]):
            got[i] += d
    assert got == seqs
