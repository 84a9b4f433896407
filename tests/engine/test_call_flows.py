"""TwiML flows on real calls through the engine: Dial bridging, Record, inbound calls, live
redirect, answering machines, conferences. Audio is checked by content at the sandbox phones."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np

from ringback.media import g711
from ringback.media.audio import decode
from ringback.sandbox.plan import MACHINE_GREETING
from ringback.tts import synth

from .audiocheck import best_correlation, contains, correlate

ALICE = "This is Alice speaking from the garden"
BOB = "Bob here, calling about the broken window"


def reference(text: str, voice: str = "woman") -> np.ndarray:
    return g711.ulaw_decode(g711.ulaw_encode(synth(text, voice=voice)))


def add_phone(h, number: str, **spec) -> None:
    h.server.sandbox.plan.add({"number": number, **spec})


async def set_number(h, **fields: str) -> dict:
    """Update the account's (first) incoming number; returns it as JSON."""
    nums = (await h.http.get(f"/2008-08-01/Accounts/{h.sid}/IncomingPhoneNumbers.json")).json()
    pn = nums["TwilioResponse"]["IncomingPhoneNumbers"][0]["IncomingPhoneNumber"]
    r = await h.http.post(f"/2008-08-01/Accounts/{h.sid}/IncomingPhoneNumbers/{pn['Sid']}", data=fields)
    assert r.status_code == 200, r.text
    return pn


async def test_dial_bridges_two_phones_and_lists_segments(harness) -> None:
    h = harness
    add_phone(h, "5005550300", ring=0.2, say=ALICE, say_after=1.0, hangup_after=12.0)
    add_phone(h, "5005550301", ring=0.3, say=BOB, say_after=0.5, hangup_after=8.0)
    h.app.twiml("/app", '<Response><Dial action="/dialed" timeout="10">5005550301</Dial></Response>')
    h.app.twiml("/dialed", "<Response><Hangup/></Response>")
    sid = await h.make_call("5005550300")
    call = await h.wait_final(sid, timeout=30)
    assert call["Status"] == "2"
    dialed = [r for r in h.requests_for(sid) if r.path == "/dialed"]
    assert dialed and dialed[0].params["DialStatus"] == "answered"

    segs = await h.segments(sid)
    assert len(segs) == 1
    seg = segs[0]
    assert seg["CallSegmentSid"] and seg["Called"] == "5005550301"
    assert int(seg["Flags"]) == 4 | 2
    listed = (await h.http.get(f"{h.calls_path}.json")).json()["TwilioResponse"]["Calls"]
    assert all(c["Call"]["CallSegmentSid"] in (None, "") for c in listed)

    alice = await h.heard(sid)
    bob = await h.heard(seg["CallSegmentSid"])
    # Each heard the other's voice through the bridge.
    assert contains(alice.audio(), reference(BOB)[2000:10000]) > 0.5
    assert contains(bob.audio(), reference(ALICE)[2000:10000]) > 0.5


async def test_dial_busy_and_no_answer_report_to_action(harness) -> None:
    h = harness
    h.app.twiml("/busy", '<Response><Dial action="/after">5005550190</Dial></Response>')
    h.app.twiml("/noans", '<Response><Dial action="/after" timeout="1">5005550191</Dial></Response>')
    h.app.twiml("/after", "<Response><Hangup/></Response>")
    a, b = await asyncio.gather(h.make_call("5005550103", path="/busy"), h.make_call("5005550104", path="/noans"))
    await asyncio.gather(h.wait_final(a), h.wait_final(b))
    after_a = [r for r in h.requests_for(a) if r.path == "/after"]
    after_b = [r for r in h.requests_for(b) if r.path == "/after"]
    assert after_a[0].params["DialStatus"] == "busy"
    assert after_b[0].params["DialStatus"] == "no-answer"


async def test_record_captures_the_phone_even_when_it_hangs_up(harness) -> None:
    h = harness
    add_phone(h, "5005550310", ring=0.2, say=BOB, say_after=0.8, hangup_after=5.0)
    h.app.twiml("/app", '<Response><Record action="/recorded" timeout="10" maxLength="20"/></Response>')
    h.app.twiml("/recorded", "<Response><Hangup/></Response>")
    sid = await h.make_call("5005550310")
    call = await h.wait_final(sid, timeout=30)
    assert call["Status"] == "2"
    rec = [r for r in h.requests_for(sid) if r.path == "/recorded"]
    assert rec, "the action is requested even though the caller hung up"
    p = rec[0].params
    assert p["CallStatus"] == "completed"
    assert int(p["Duration"]) >= 2
    # The recording is public (no auth) and holds what the phone said.
    async with httpx.AsyncClient() as anon:
        wav = await anon.get(p["RecordingUrl"])
    assert wav.status_code == 200 and wav.headers["content-type"].startswith("audio/")
    audio = decode(wav.content, "audio/wav")
    assert contains(audio, reference(BOB)[2000:10000]) > 0.5


async def test_inbound_call_from_sandbox_phone(harness) -> None:
    h = harness
    pn = await set_number(h, Url=h.app.url("/inbound"), Method="POST")
    h.app.twiml("/inbound", f"<Response><Say>{ALICE}</Say></Response>")
    r = await h.http.post("/sandbox/Calls", data={"From": "4155550123", "To": pn["PhoneNumber"], "Say": ""})
    assert r.status_code == 201, r.text
    heard = r.json()
    assert heard["result"] == "completed"
    req = [s for s in h.app.seen if s.path == "/inbound"][0]
    assert req.params["Caller"] == "4155550123" and req.params["Called"] == "5005551000"
    assert req.params["CallStatus"] == "in-progress" and "DialStatus" not in req.params
    assert req.signature_ok
    assert req.params["CallerState"] == "CA"
    call = await h.wait_final(req.params["CallSid"])
    assert call["Flags"] == "1" and call["Status"] == "2"
    assert call["PhoneNumberSid"] == pn["Sid"]


async def test_unknown_number_is_404_to_the_caller(harness) -> None:
    h = harness
    r = await h.http.post("/sandbox/Calls", data={"From": "4155550123", "To": "5005551999"})
    assert r.status_code == 404  # not the account's number: the sandbox API refuses it
    # Straight over SIP, ringback answers an INVITE for a number nobody owns with 404.
    ua = h.server.ua
    heard = await h.server.sandbox.call("4155550123", "5005551999", ua.host, ua.port)
    assert heard.result == "failed" and heard.sip_code == 404


async def test_live_redirect_interrupts_current_verb(harness) -> None:
    h = harness
    h.app.twiml("/app", '<Response><Say loop="0">Please hold the line</Say></Response>')
    h.app.twiml("/new", f"<Response><Say>{ALICE}</Say><Hangup/></Response>")
    sid = await h.make_call("5005550105")
    deadline = time.monotonic() + 10
    while not h.requests_for(sid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    r = await h.http.post(f"{h.calls_path}/{sid}", data={"CurrentUrl": h.app.url("/new"), "CurrentMethod": "GET"})
    assert r.status_code == 200, r.text
    call = await h.wait_final(sid, timeout=20)
    assert call["Status"] == "2"
    new = [s for s in h.requests_for(sid) if s.path == "/new"]
    assert new and new[0].method == "GET"
    heard = await h.heard(sid)
    assert contains(heard.audio(), reference(ALICE, voice="man")[2000:10000]) > 0.6
    # Redirecting a finished call is 21220.
    r = await h.http.post(f"{h.calls_path}/{sid}", data={"CurrentUrl": h.app.url("/new")})
    assert r.status_code == 400 and "21220" in r.text


async def test_answering_machines_and_people_with_ifmachine(harness) -> None:
    h = harness
    message = "This is a reminder about your appointment tomorrow"
    h.app.twiml("/app", f"<Response><Say>{message}</Say></Response>")
    cont, hang, person = await asyncio.gather(
        h.make_call("5005550170", IfMachine="Continue"),
        h.make_call("5005550171", IfMachine="hangup"),
        h.make_call("5005550106", IfMachine="Continue"),
    )
    c, hg, p = await asyncio.gather(*(h.wait_final(s, timeout=60) for s in (cont, hang, person)))
    assert h.requests_for(cont)[0].params["DialStatus"] == "answered-machine"
    assert h.requests_for(person)[0].params["DialStatus"] == "answered-human"
    hung = h.requests_for(hang)
    assert len(hung) == 1 and hung[0].params["DialStatus"] == "hangup-machine"
    assert hung[0].params["CallStatus"] == "completed"
    assert c["Status"] == hg["Status"] == p["Status"] == "2"

    # Under Continue, the message lands on the machine's recording after its beep.
    heard = await h.heard(cont)
    ref = reference(message, voice="man")
    score, offset = correlate(heard.audio(), ref[:8000])
    assert score > 0.6
    # The machine's greeting and beep, as its script plays them from the moment of answer.
    beep_end = 0.1 + len(synth(MACHINE_GREETING, voice="woman")) / 8000 + 0.5
    start = offset / 8000
    assert beep_end - 0.05 <= start <= beep_end + 1.0, (start, beep_end)
    machine = await h.heard(hang)
    assert machine.hung_up_by == "remote"


PHRASES = [
    "Red apples grow in the northern orchard",
    "Seven silver trains leave the station at noon",
    "My favourite colour has always been green",
    "Please remember to water the tomato plants",
]


async def test_conference_mixes_everyone_but_yourself(harness, record_property) -> None:
    """Eight participants: four speak in turn, everyone listens; nobody hears their own voice."""
    h = harness
    numbers = [f"50055503{20 + i}" for i in range(8)]
    talk_end = 2.0 + 3.2 * len(PHRASES)
    for i, n in enumerate(numbers):
        if i < len(PHRASES):
            # Staggered speech so the phrases do not overlap in the mix.
            add_phone(h, n, ring=0.2, say=PHRASES[i], say_after=2.0 + 3.2 * i, hangup_after=talk_end + 2.0)
        else:
            add_phone(h, n, ring=0.2, say=None, hangup_after=talk_end + 2.0)
    h.app.twiml("/app", '<Response><Dial><Conference beep="false">standup</Conference></Dial></Response>')
    cpu0 = time.process_time()
    sids = await asyncio.gather(*(h.make_call(n) for n in numbers))
    finals = await asyncio.gather(*(h.wait_final(s, timeout=60) for s in sids))
    record_property("conference_8_cpu_seconds", round(time.process_time() - cpu0, 2))
    assert all(c["Status"] == "2" for c in finals)
    for i, sid in enumerate(sids):
        audio = (await h.heard(sid)).audio()
        for j, phrase in enumerate(PHRASES):
            # Unrelated speech of the same voice correlates at about 0.25-0.35; a copy at ~1.0.
            if i == j:
                score = best_correlation(audio, reference(phrase)[1000:9000])
                assert score < 0.5, f"participant {i} heard their own voice ({score:.2f})"
            else:
                score = contains(audio, reference(phrase)[1000:9000])
                assert score > 0.8, f"participant {i} did not hear participant {j} ({score:.2f})"
    confs = (await h.http.get(f"/2008-08-01/Accounts/{h.sid}/Conferences.json")).json()
    conf = confs["TwilioResponse"]["Conferences"][0]["Conference"]
    assert conf["FriendlyName"] == "standup" and conf["Status"] == "2"


async def test_dial_whisper_and_hangup_on_star(harness) -> None:
    h = harness
    add_phone(h, "5005550330", ring=0.2, say=None, digits="*", digits_after=4.0, hangup_after=10.0)
    add_phone(h, "5005550331", ring=0.2, say=None, hangup_after=20.0)
    h.app.twiml("/app", '<Response><Dial hangupOnStar="true" action="/after">'
                        '<Number url="/whisper">5005550331</Number></Dial></Response>')
    h.app.twiml("/whisper", f"<Response><Say>{ALICE}</Say></Response>")
    h.app.twiml("/after", "<Response><Say>Back with you</Say></Response>")
    sid = await h.make_call("5005550330")
    call = await h.wait_final(sid, timeout=30)
    assert call["Status"] == "2"
    after = [r for r in h.requests_for(sid) if r.path == "/after"]
    assert after and after[0].params["DialStatus"] == "answered"
    callee = await h.heard((await h.segments(sid))[0]["CallSegmentSid"])
    # The whisper went to the callee only; '*' ended the callee's leg well before its own hangup.
    assert contains(callee.audio(), reference(ALICE, voice="man")[2000:10000]) > 0.6
    assert callee.hung_up_by == "remote" and callee.hung_up_at - callee.answered_at < 15
    caller = await h.heard(sid)
    assert best_correlation(caller.audio(), reference(ALICE, voice="man")[2000:10000]) < 0.5


async def test_caller_id_validation_call(harness) -> None:
    h = harness
    r = await h.http.post(f"/2008-08-01/Accounts/{h.sid}/OutgoingCallerIds",
                          data={"PhoneNumber": "500-555-0340", "CallDelay": "1", "FriendlyName": "Desk"})
    assert r.status_code in (200, 201), r.text
    import xml.etree.ElementTree as ET

    code = ET.fromstring(r.content).findtext("ValidationRequest/ValidationCode")
    assert code and len(code) == 6
    # The phone behind the number types the code when asked.
    add_phone(h, "5005550340", ring=0.2, say=None, digits=code, digits_after=4.0, hangup_after=15.0)
    deadline = time.monotonic() + 30
    ids: list = []
    while time.monotonic() < deadline:
        doc = (await h.http.get(f"/2008-08-01/Accounts/{h.sid}/OutgoingCallerIds.json")).json()
        ids = doc["TwilioResponse"]["OutgoingCallerIds"]
        if any(i["OutgoingCallerId"]["PhoneNumber"] == "5005550340" for i in ids):
            break
        await asyncio.sleep(0.2)
    assert any(i["OutgoingCallerId"]["PhoneNumber"] == "5005550340" for i in ids)
    # And now it can be used as Caller.
    h.app.twiml("/app", "<Response><Hangup/></Response>")
    r = await h.http.post(h.calls_path, data={"Caller": "5005550340", "Called": "5005550109", "Url": h.app.url("/app")})
    assert r.status_code == 201, r.text


async def test_inbound_voice_fallback_url_when_the_url_fails(harness) -> None:
    h = harness
    pn = await set_number(h, Url=h.app.url("/broken"), VoiceFallbackUrl=h.app.url("/fallback"),
                          VoiceFallbackMethod="GET")
    h.app.twiml("/broken", "<Response><Say>unclosed", content_type="text/xml")
    h.app.twiml("/fallback", f"<Response><Say>{ALICE}</Say></Response>")
    r = await h.http.post("/sandbox/Calls", data={"From": "4155550124", "To": pn["PhoneNumber"], "Say": ""})
    assert r.status_code == 201, r.text
    paths = [(s.path, s.method) for s in h.app.seen]
    assert paths[:2] == [("/broken", "POST"), ("/fallback", "GET")]
    call_sid = h.app.seen[0].params["CallSid"]
    notes = (await h.http.get(f"{h.calls_path}/{call_sid}/Notifications.json")).text
    assert "12100" in notes  # the broken document is still reported


async def test_play_and_transcription_on_a_real_call(harness) -> None:
    """<Play> of an MP3 served by the app reaches the phone by content; <Record transcribe> makes a
    Transcription and POSTs it to transcribeCallback."""
    from starlette.responses import Response

    from ringback.media.audio import encode_mp3

    h = harness
    clip = reference(BOB, voice="man")
    mp3 = encode_mp3(clip)

    async def audio(request) -> Response:  # type: ignore[no-untyped-def]
        return Response(mp3, media_type="audio/mpeg")

    h.app.routes["/clip.mp3"] = audio
    add_phone(h, "5005550360", ring=0.2, say=ALICE, say_after=3.3, hangup_after=20.0)
    h.app.twiml("/app", f'<Response><Play>{h.app.url("/clip.mp3")}</Play>'
                        '<Record action="/rec" timeout="3" transcribe="true" transcribeCallback="/tr" playBeep="false"/>'
                        "</Response>")
    h.app.twiml("/rec", "<Response><Hangup/></Response>")
    h.app.twiml("/tr", "<Response/>")
    sid = await h.make_call("5005550360")
    await h.wait_final(sid, timeout=30)
    heard = await h.heard(sid)
    assert contains(heard.audio(), clip[2000:10000]) > 0.6
    deadline = time.monotonic() + 30
    while not [s for s in h.app.seen if s.path == "/tr"] and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    tr = [s for s in h.app.seen if s.path == "/tr"]
    assert tr, ([(s.path, s.params) for s in h.app.seen],
                (await h.http.get(f"{h.calls_path}/{sid}/Notifications.json")).text)
    assert tr[0].method == "POST" and tr[0].signature_ok
    p = tr[0].params
    assert p["TranscriptionStatus"] == "completed" and p["RecordingUrl"] and p["TranscriptionUrl"]
    listed = (await h.http.get(f"/2008-08-01/Accounts/{h.sid}/Transcriptions.json")).json()
    t = listed["TwilioResponse"]["Transcriptions"][0]["Transcription"]
    assert t["Status"] == "completed" and t["DateCreated"].isdigit()  # epoch seconds, as in 2008


async def test_dial_time_limit_ends_the_bridge(harness) -> None:
    h = harness
    add_phone(h, "5005550370", ring=0.2, say=None, hangup_after=30.0)
    add_phone(h, "5005550371", ring=0.2, say=None, hangup_after=30.0)
    h.app.twiml("/app", '<Response><Dial timeLimit="2" action="/after">5005550371</Dial></Response>')
    h.app.twiml("/after", "<Response><Hangup/></Response>")
    sid = await h.make_call("5005550370")
    call = await h.wait_final(sid, timeout=20)
    assert call["Status"] == "2" and int(call["Duration"]) < 10  # not the phones' 30 s
    after = [r for r in h.requests_for(sid) if r.path == "/after"]
    assert after and after[0].params["DialStatus"] == "answered"
    seg = (await h.segments(sid))[0]
    assert 1 <= int(seg["Duration"]) <= 4
    callee = await h.heard(seg["CallSegmentSid"])
    assert callee.hung_up_by == "remote"


async def test_far_end_hangs_up_during_analysis_and_during_digits(harness) -> None:
    """DESIGN's table: a hangup during analysis or SendDigits is reported 'as answered' with
    CallStatus=completed (the request is still made), and the call is Complete."""
    h = harness
    add_phone(h, "5005550380", ring=0.2, say=None, hangup_after=0.6)
    add_phone(h, "5005550381", ring=0.2, say=None, hangup_after=0.6)
    h.app.twiml("/app", "<Response><Say>never heard</Say></Response>")
    amd, digits = await asyncio.gather(
        h.make_call("5005550380", IfMachine="Continue"),
        h.make_call("5005550381", SendDigits="wwwwww1234"),  # 3 s of pauses first
    )
    a, d = await asyncio.gather(h.wait_final(amd), h.wait_final(digits))
    assert a["Status"] == d["Status"] == "2"
    ra, rd = h.requests_for(amd), h.requests_for(digits)
    assert len(ra) == 1 and ra[0].params["CallStatus"] == "completed"
    assert ra[0].params["DialStatus"] == "answered-human"  # undecided counts as a person
    assert len(rd) == 1 and rd[0].params["CallStatus"] == "completed" and rd[0].params["DialStatus"] == "answered"
    assert (await h.heard(digits)).digits == ""  # it left before any digit was sent
