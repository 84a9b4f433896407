from __future__ import annotations

import asyncio

import numpy as np
from twiml_fakes import ACCOUNT, TOKEN, FakeChannel  # type: ignore[import-not-found]

from ringback.engine.webhooks import AppClient, ResponseCache
from ringback.twiml import media
from ringback.twiml.channel import DialResult
from ringback.twiml.interpreter import Interpreter, run_whisper
from ringback.twiml.testapp import AppServer


async def run(app: AppServer, ch: FakeChannel, path: str = "/start", **kw: object):
    async with ch, AppClient(ACCOUNT, TOKEN, cache=ResponseCache()) as c:
        return await asyncio.wait_for(Interpreter(ch, c, app.url(path), **kw).run(), 20)  # type: ignore[arg-type]


# ------------------------------------------------------------------ Gather


async def test_gather_num_digits_default_action_is_current_document(app: AppServer) -> None:
    calls = {"n": 0}

    def doc(r: object) -> str:
        calls["n"] += 1
        return '<Response><Gather numDigits="3"><Say>enter code</Say></Gather></Response>' if calls["n"] == 1 \
            else "<Response/>"

    app.twiml("/dir/start", doc)
    ch = FakeChannel(digits=[(0.1, "1"), (0.2, "2"), (0.3, "3"), (0.4, "4")])
    await run(app, ch, "/dir/start?x=1")
    assert [s.path for s in app.seen] == ["/dir/start", "/dir/start"]
    assert app.seen[1].form["Digits"] == "123" and app.seen[1].query == {"x": "1"}
    assert app.seen[1].signature_ok


async def test_gather_first_key_cuts_nested_audio(app: AppServer) -> None:
    app.twiml("/start", '<Response><Gather action="/got" numDigits="1"><Say loop="0">press a key</Say>'
                        "<Say>not reached</Say></Gather></Response>")
    app.twiml("/got", "<Response/>")
    ch = FakeChannel(digits=[(0.3, "7")])
    await run(app, ch)
    assert ch.plays[-1].interrupted_by == "7" and all(p.interruptible for p in ch.plays)
    assert len({p.pcm.tobytes() for p in ch.plays}) == 1  # the second Say never started
    assert app.seen[1].path == "/got" and app.seen[1].form["Digits"] == "7"


async def test_gather_finish_on_key_and_relative_action_get(app: AppServer) -> None:
    app.twiml("/a/start", '<Response><Gather action="../b/got" method="GET" finishOnKey="*">'
                          "</Gather></Response>")
    app.twiml("/b/got", "<Response/>")
    ch = FakeChannel(digits=[(0.05, "4"), (0.1, "2"), (0.15, "*"), (0.2, "9")])
    await run(app, ch, "/a/start")
    assert app.seen[1].method == "GET" and app.seen[1].path == "/b/got"
    assert app.seen[1].query["Digits"] == "42"


async def test_gather_hash_is_a_digit_when_finish_key_empty(app: AppServer) -> None:
    app.twiml("/start", '<Response><Gather action="/got" finishOnKey="" timeout="1"/></Response>')
    app.twiml("/got", "<Response/>")
    ch = FakeChannel(digits=[(0.05, "1"), (0.1, "#")])
    await run(app, ch)
    assert app.seen[1].form["Digits"] == "1#"


async def test_gather_timeout_between_digits_submits_partial(app: AppServer) -> None:
    app.twiml("/start", '<Response><Gather action="/got" timeout="1"/></Response>')
    app.twiml("/got", "<Response/>")
    ch = FakeChannel(digits=[(0.1, "5"), (0.8, "6"), (2.5, "7")])
    await run(app, ch)
    assert app.seen[1].form["Digits"] == "56"


async def test_gather_without_input_falls_through(app: AppServer) -> None:
    app.twiml("/start", '<Response><Gather action="/got" timeout="1"><Say>hi</Say></Gather>'
                        "<Say>no input</Say></Response>")
    ch = FakeChannel()
    loop = asyncio.get_running_loop()
    t = loop.time()
    out = await run(app, ch)
    assert out.status == "completed" and len(app.seen) == 1 and len(ch.plays) == 2
    assert 0.9 < loop.time() - t < 3


async def test_gather_only_finish_key_falls_through(app: AppServer) -> None:
    app.twiml("/start", '<Response><Gather action="/got"/><Say>next</Say></Response>')
    ch = FakeChannel(digits=[(0.1, "#")])
    await run(app, ch)
    assert len(app.seen) == 1 and len(ch.plays) == 1


async def test_gather_nested_pause_cut_by_key(app: AppServer) -> None:
    app.twiml("/start", '<Response><Gather action="/got" numDigits="1"><Pause length="10"/></Gather></Response>')
    app.twiml("/got", "<Response/>")
    ch = FakeChannel(digits=[(0.2, "3")])
    loop = asyncio.get_running_loop()
    t = loop.time()
    await run(app, ch)
    assert loop.time() - t < 2 and app.seen[1].form["Digits"] == "3"


# ------------------------------------------------------------------ Record


async def test_record_until_silence(app: AppServer) -> None:
    app.twiml("/start", '<Response><Record action="/rec" timeout="1"/></Response>')
    app.twiml("/rec", "<Response/>")
    ch = FakeChannel(talk=[(0.3, 1.3)])
    await run(app, ch)
    assert np.array_equal(ch.plays[0].pcm, media.beep())  # playBeep defaults to true
    info, pcm = ch.recordings[0]
    assert 0.9 < len(pcm) / 8000 < 1.6  # trimmed to the speech (plus a little margin)
    form = app.seen[1].form
    assert form["RecordingUrl"] == info.url and form["Duration"] == "1" and form["Digits"] == ""
    assert form["CallStatus"] == "in-progress"


async def test_record_finish_key_set_and_no_beep(app: AppServer) -> None:
    app.twiml("/start", '<Response><Record action="/rec" finishOnKey="59" playBeep="false"/></Response>')
    app.twiml("/rec", "<Response/>")
    ch = FakeChannel(talk=[(0.0, 5)], digits=[(0.5, "1"), (0.8, "9")])
    await run(app, ch)
    assert not ch.plays
    assert app.seen[1].form["Digits"] == "9"
    assert 0.6 < ch.recordings[0][1].size / 8000 < 1.1


async def test_record_max_length(app: AppServer) -> None:
    app.twiml("/start", '<Response><Record action="/rec" maxLength="2" playBeep="false"/></Response>')
    app.twiml("/rec", "<Response/>")
    ch = FakeChannel(talk=[(0.0, 10)])
    await run(app, ch)
    assert 1.8 < ch.recordings[0][1].size / 8000 <= 2.0
    assert app.seen[1].form["Duration"] == "2"


async def test_empty_recording_falls_through(app: AppServer) -> None:
    app.twiml("/start", '<Response><Record action="/rec" timeout="1" playBeep="false"/><Say>nothing</Say></Response>')
    ch = FakeChannel()
    out = await run(app, ch)
    assert not ch.recordings and len(app.seen) == 1 and len(ch.plays) == 1 and out.status == "completed"


async def test_hangup_during_record_still_requests_action(app: AppServer) -> None:
    app.twiml("/start", '<Response><Record playBeep="false"/></Response>')
    ch = FakeChannel(talk=[(0.0, 5)], hangup_at=0.8)
    out = await run(app, ch)
    assert out.status == "hung_up"
    assert [s.path for s in app.seen] == ["/start", "/start"]  # action defaults to the document
    form = app.seen[1].form
    assert form["CallStatus"] == "completed" and form["RecordingUrl"] and form["Duration"] == "1"


async def test_record_transcribe(app: AppServer) -> None:
    app.twiml("/start", '<Response><Record action="/rec" timeout="1" transcribe="true" '
                        'transcribeCallback="/tc" playBeep="false"/></Response>')
    app.twiml("/rec", "<Response/>")
    ch = FakeChannel(talk=[(0.0, 0.5)])
    await run(app, ch)
    info, callback = ch.transcriptions[0]
    assert info == ch.recordings[0][0] and callback == app.url("/tc")


async def test_record_transcribe_max_length_too_high_13615(app: AppServer) -> None:
    app.twiml("/start", '<Response><Record action="/rec" timeout="1" transcribe="true" maxLength="300" '
                        'playBeep="false"/></Response>')
    app.twiml("/rec", "<Response/>")
    ch = FakeChannel(talk=[(0.0, 0.5)])
    await run(app, ch)
    assert 13615 in ch.codes() and not ch.transcriptions and ch.recordings


# ------------------------------------------------------------------ Dial


async def test_dial_numbers_and_action(app: AppServer) -> None:
    app.twiml("/start", '<Response><Dial action="/dialed" timeout="12" timeLimit="60" hangupOnStar="true">'
                        '<Number sendDigits="1w2">415-555-0101</Number><Number url="whisper">4155550102</Number>'
                        "</Dial><Say>unreachable</Say></Response>")
    app.twiml("/dialed", "<Response/>")
    ch = FakeChannel(dial_result=DialResult("busy"))
    await run(app, ch)
    d = ch.dials[0]
    assert [t.number for t in d.targets] == ["4155550101", "4155550102"]
    assert d.targets[0].send_digits == "1w2" and d.targets[1].url == app.url("/whisper")
    assert (d.timeout, d.time_limit, d.hangup_on_star) == (12, 60, True)
    assert d.caller_id == "4155550100"
    assert app.seen[1].form["DialStatus"] == "busy" and not ch.plays


async def test_dial_without_action_falls_through(app: AppServer) -> None:
    app.twiml("/start", "<Response><Dial>4155550101</Dial><Say>after</Say></Response>")
    ch = FakeChannel()
    await run(app, ch)
    assert ch.dials[0].timeout == 30 and ch.dials[0].time_limit == 14400 and len(ch.plays) == 1
    assert len(app.seen) == 1


async def test_dial_caller_id_validated_13214(app: AppServer) -> None:
    app.twiml("/start", '<Response><Dial callerId="4155559999">4155550101</Dial>'
                        '<Dial callerId="(500) 555-1000">4155550101</Dial></Response>')
    ch = FakeChannel(allowed_caller_ids={"5005551000"})
    await run(app, ch)
    assert ch.dials[0].caller_id == "4155550100" and ch.dials[1].caller_id == "5005551000"
    assert ch.codes() == [13214]


async def test_hangup_during_dial_still_requests_action(app: AppServer) -> None:
    app.twiml("/start", '<Response><Dial action="/dialed">4155550101</Dial></Response>')
    ch = FakeChannel(hangup_at=0.2, dial_seconds=5)
    out = await run(app, ch)
    assert out.status == "hung_up"
    assert app.seen[1].form["CallStatus"] == "completed" and app.seen[1].form["DialStatus"] == "answered"


async def test_dial_from_segment_13201(app: AppServer) -> None:
    app.twiml("/start", "<Response><Dial>4155550101</Dial></Response>")
    ch = FakeChannel(is_segment=True)
    out = await run(app, ch)
    assert out.app_error and out.error == 13201 and not ch.dials


async def test_whisper(app: AppServer) -> None:
    app.twiml("/accept", "<Response><Say>call for you</Say></Response>")
    app.twiml("/decline", "<Response><Hangup/></Response>")
    async with AppClient(ACCOUNT, TOKEN) as c:
        a = FakeChannel(is_segment=True)
        async with a:
            assert await run_whisper(a, c, app.url("/accept"))
        assert len(a.plays) == 1 and not a.hangup_called
        b = FakeChannel(is_segment=True)
        async with b:
            assert not await run_whisper(b, c, app.url("/decline"))


async def test_conference_options_and_default_hold_music(app: AppServer) -> None:
    app.twiml("/start", '<Response><Dial action="/after" hangupOnStar="true" timeLimit="100">'
                        '<Conference muted="true" beep="false" startConferenceOnEnter="false" '
                        'endConferenceOnExit="true">room 1</Conference></Dial></Response>')
    app.twiml("/after", "<Response/>")
    ch = FakeChannel()
    ch.conference_wait_seconds = 0.3
    await run(app, ch)
    o = ch.conferences[0]
    assert (o.name, o.muted, o.beep, o.start_on_enter, o.end_on_exit) == ("room 1", True, False, False, True)
    assert (o.time_limit, o.hangup_on_star) == (100, True)
    assert np.array_equal(ch.plays[0].pcm, media.hold_music())
    assert app.seen[-1].path == "/after" and app.seen[-1].form["DialStatus"] == "answered"


async def test_conference_wait_url_twiml(app: AppServer) -> None:
    app.twiml("/start", '<Response><Dial><Conference waitUrl="/wait" waitMethod="GET">r</Conference></Dial>'
                        "</Response>")
    app.twiml("/wait", "<Response><Say>please wait</Say></Response>")
    ch = FakeChannel()
    ch.conference_wait_seconds = 0.4
    await run(app, ch)
    waits = [s for s in app.seen if s.path == "/wait"]
    assert waits and waits[0].method == "GET" and waits[0].signature_ok
    assert ch.plays and all(np.array_equal(p.pcm, ch.plays[0].pcm) for p in ch.plays)


async def test_conference_wait_url_bad_verb_13238(app: AppServer) -> None:
    app.twiml("/start", '<Response><Dial><Conference waitUrl="/wait">r</Conference></Dial></Response>')
    app.twiml("/wait", "<Response><Gather/></Response>")
    ch = FakeChannel()
    ch.conference_wait_seconds = 0.3
    await run(app, ch)
    assert 13238 in ch.codes() and not ch.plays


async def test_conference_wait_url_empty_is_silence(app: AppServer) -> None:
    app.twiml("/start", '<Response><Dial><Conference waitUrl="">r</Conference></Dial></Response>')
    ch = FakeChannel()
    ch.conference_wait_seconds = 0.2
    await run(app, ch)
    assert not ch.plays and len(app.seen) == 1
