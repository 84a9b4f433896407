"""The life of a call, end to end against the sandbox network: every outcome row of DESIGN.md's
table, the first request's parameters and signature, SendDigits, and audio checked by content."""

from __future__ import annotations

import asyncio

import numpy as np

from ringback.media import g711
from ringback.tts import synth

from .audiocheck import contains

SAY_TEXT = "The quick brown fox jumps over the lazy dog"


async def test_outcomes_of_every_kind(harness) -> None:
    h = harness
    h.app.twiml("/app", f"<Response><Say>{SAY_TEXT}</Say></Response>")
    h.app.twiml("/hangup", "<Response><Hangup/></Response>")
    answered, busy, noanswer, fail, hangs_up = await asyncio.gather(
        h.make_call("5005550100"),
        h.make_call("5005550190"),
        h.make_call("5005550191", Timeout="1"),
        h.make_call("5005550192"),
        h.make_call("(500) 555-0193", path="/hangup"),
    )
    results = await asyncio.gather(*(h.wait_final(s) for s in (answered, busy, noanswer, fail, hangs_up)))
    a, b, n, f, hu = results

    assert a["Status"] == "2" and a["Flags"] == "2"
    assert a["StartTime"] and a["EndTime"] and a["Duration"] not in ("", None)
    assert b["Status"] == "3" and not b["EndTime"] and not b["Duration"]
    assert n["Status"] == "5" and not n["EndTime"]
    assert f["Status"] == "4" and not f["EndTime"]
    assert hu["Status"] == "2"
    for call in results:
        assert call["StartTime"], call  # the INVITE was sent for every one of them

    expected = {
        answered: ("answered", "in-progress"),
        busy: ("busy", "busy"),
        noanswer: ("no-answer", "no-answer"),
        fail: ("fail", "failed"),
        hangs_up: ("answered", "in-progress"),
    }
    for sid, (dial_status, call_status) in expected.items():
        reqs = h.requests_for(sid)
        assert reqs, f"no request for {sid}"
        first = reqs[0]
        assert first.method == "POST"
        assert first.signature_ok
        p = first.params
        assert p["DialStatus"] == dial_status, (sid, p)
        assert p["CallStatus"] == call_status
        assert p["CallGuid"] == p["CallSid"] == sid
        assert p["AccountSid"] == p["AccountGuid"] == h.sid
        assert p["Caller"] == "5005551000"
        assert p["CalledCountry"] == "US"
        # Outcome reports are made once; their response is ignored.
        if dial_status != "answered":
            assert len(reqs) == 1

    # What the answered phone heard is the speech, by content.
    heard = await h.heard(answered)
    reference = g711.ulaw_decode(g711.ulaw_encode(synth(SAY_TEXT)))
    audio = heard.audio()
    assert contains(audio, reference[4000:12000]) > 0.6
    assert heard.result == "completed"


async def test_send_digits_reach_the_phone_and_get_uses_query(harness) -> None:
    h = harness
    h.app.twiml("/app", "<Response><Pause length=\"1\"/></Response>")
    sid = await h.make_call("5005550101", SendDigits="12w34#", Method="GET")
    call = await h.wait_final(sid)
    assert call["Status"] == "2"
    heard = await h.heard(sid)
    assert heard.digits == "1234#"
    first = h.requests_for(sid)[0]
    assert first.method == "GET" and first.query["DialStatus"] == "answered" and first.signature_ok
    # The 'w' is a half-second pause between 2 and 3.
    gap = heard.digit_times[2] - heard.digit_times[1]
    assert gap >= 0.4, heard.digit_times


async def test_gather_from_digit_pressing_phone(harness) -> None:
    h = harness
    h.app.twiml(
        "/app",
        '<Response><Gather action="/got" timeout="5"><Say>Enter your code</Say></Gather></Response>',
    )
    h.app.twiml("/got", "<Response><Say>Thanks</Say></Response>")
    sid = await h.make_call("5005550150")
    call = await h.wait_final(sid, timeout=30)
    assert call["Status"] == "2"
    got = [r for r in h.requests_for(sid) if r.path == "/got"]
    assert got and got[0].params["Digits"] == "1234"
    assert got[0].params.get("DialStatus") is None  # only the first request carries DialStatus


async def test_unreachable_app_is_application_error_with_notification(harness) -> None:
    h = harness
    sid = await h.make_call("5005550102", path="/missing")  # the app answers 404
    call = await h.wait_final(sid)
    assert call["Status"] == "4"
    r = await h.http.get(f"{h.calls_path}/{sid}/Notifications.json")
    assert r.status_code == 200
    text = r.text
    assert "11200" in text
    heard = await h.heard(sid)
    # The caller heard the application-error message, not silence.
    assert np.abs(heard.audio().astype(np.int32)).mean() > 50
