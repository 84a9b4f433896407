"""baresip as a real phone on loopback: it auto-answers ringback's INVITE, records what it hears
(sndfile module) and plays a WAV (aufile). Audio is checked by content, both ways, and the digits of
SendDigits must arrive as RFC 4733 events that baresip itself reports."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ringback.media import g711
from ringback.tts import synth

from ..engine.audiocheck import contains, correlate
from .conftest import start_ringback
from .peers import baresip_phone

pytestmark = pytest.mark.interop

RINGBACK_SAYS = "The quick brown fox jumps over the lazy dog"
PHONE_SAYS = "This is the baresip phone speaking, please record me"


def _phone_wav(path: Path, lead_s: float, tail_s: float, repeat: int = 1) -> np.ndarray:
    """baresip's source: (silence, a sentence) `repeat` times, then silence; it hangs up at the end."""
    speech = synth(PHONE_SAYS)
    lead = np.zeros(int(lead_s * 8000), np.int16)
    pcm = np.concatenate([*([lead, speech] * repeat), np.zeros(int(tail_s * 8000), np.int16)])
    sf.write(path, pcm, 8000, subtype="PCM_16")
    return speech


def _g711(pcm: np.ndarray) -> np.ndarray:
    """What a sentence sounds like after one PCMU round trip (the reference to correlate against)."""
    return g711.ulaw_decode(g711.ulaw_encode(pcm))


async def test_phone_hears_say_and_receives_send_digits(tmp_path: Path) -> None:
    _phone_wav(tmp_path / "phone.wav", 0.0, 15.0)  # long enough that the phone never hangs up first
    async with (
        baresip_phone(tmp_path / "baresip", tmp_path / "phone.wav") as phone,
        start_ringback(tmp_path / "rb", f"sip:127.0.0.1:{phone.port}") as h,
    ):
        h.app.twiml("/app", f"<Response><Say>{RINGBACK_SAYS}</Say></Response>")
        sid = await h.make_call("/app", SendDigits="19w*#")
        call = await h.wait_final(sid)
        first = await h.first_request(sid)
    log = phone.log()
    assert call["Status"] == "2" and call["EndTime"], log[-3000:]
    assert first.params["DialStatus"] == "answered"
    # baresip reports each RFC 4733 event it received, start and end.
    ended = re.findall(r"received event: '(.)' \(end=1\)", log)
    assert "".join(ended) == "19*#", log[-3000:]
    recs = phone.recordings()
    assert len(recs) == 1, recs
    heard, rate = sf.read(recs[0], dtype="int16")
    assert rate == 8000
    reference = _g711(synth(RINGBACK_SAYS))
    # The sentence (a 1.5 s stretch of it) is in what the phone recorded, and after the digits.
    score, offset = correlate(heard, reference[4000:16000])
    assert score > 0.6, score
    assert offset / 8000 > 0.4  # the digits (about 0.9 s with the pause) went first


async def test_ringback_records_what_the_phone_says(tmp_path: Path) -> None:
    # Said three times over ~13 s, so that an 8 s recording holds one whole sentence however late
    # the app's first request lands on a loaded machine.
    speech = _phone_wav(tmp_path / "phone.wav", 1.0, 1.0, repeat=3)
    async with (
        baresip_phone(tmp_path / "baresip", tmp_path / "phone.wav") as phone,
        start_ringback(tmp_path / "rb", f"sip:127.0.0.1:{phone.port}") as h,
    ):
        h.app.twiml("/app", '<Response><Record action="/rec" maxLength="8" timeout="5"/></Response>')
        h.app.twiml("/rec", "<Response><Hangup/></Response>")
        sid = await h.make_call("/app")
        call = await h.wait_final(sid)
        rec = [r for r in h.requests_for(sid) if r.path == "/rec"]
        assert rec, (h.app.paths(), phone.log()[-2000:])
        url = rec[0].params["RecordingUrl"]
        r = await h.http.get(url if url.endswith(".wav") else url + ".wav")
        assert r.status_code == 200, r.text
        wav = tmp_path / "recording.wav"
        wav.write_bytes(r.content)
    assert call["Status"] == "2"
    recorded, rate = sf.read(wav, dtype="int16")
    assert rate == 8000
    assert 7.0 <= len(recorded) / 8000 <= 8.5  # maxLength ended it, not the phone
    assert contains(recorded, _g711(speech)[4000:16000]) > 0.6
