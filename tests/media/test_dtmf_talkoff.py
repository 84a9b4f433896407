"""No false DTMF digits on speech (talk-off), using the espeak-ng CLI for real synthetic speech."""

import shutil
import subprocess

import numpy as np
import pytest

from ringback.media import audio, dtmf

TEXT = (
    "Hello, thank you for calling. Please leave a message after the tone. "
    "Nine one one, four three two, seven seven seven. Operator, are you there? "
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. "
    "One, two, three, four, five, six, seven, eight, nine, zero, star, pound. "
    "Whistling tea kettles and beeping trucks are not touch tones."
)


def _speech(voice: str, pitch: int, speed: int) -> np.ndarray:
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "--stdout", TEXT],
        capture_output=True, check=True, timeout=60,
    ).stdout
    return audio.decode(out, "audio/wav")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_no_digits_in_speech():
    total = 0.0
    for voice, pitch, speed in [("en-us", 50, 160), ("en", 80, 140), ("en-us+f3", 70, 175), ("en-gb", 20, 150),
                                ("en-us+m3", 99, 190)]:
        pcm = _speech(voice, pitch, speed)
        total += len(pcm) / 8000
        for gain in (0.5, 1.0, 2.0):
            x = np.clip(pcm.astype(float) * gain, -32768, 32767).astype(np.int16)
            assert dtmf.detect(x) == "", (voice, pitch, gain)
    assert total > 40  # seconds of speech checked at three levels each
    # and the detector still works when a digit is spoken over
    pcm = _speech("en-us", 50, 160)[:16000].astype(float) * 0.3
    pcm[8000:8480] += dtmf.tone("7", 60, -10)
    assert dtmf.detect(np.clip(pcm, -32768, 32767).astype(np.int16)) == "7"
