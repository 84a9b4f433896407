from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
import soundfile as sf
from starlette.requests import Request
from starlette.responses import Response
from twiml_fakes import ACCOUNT, CALL, TOKEN, FakeChannel  # type: ignore[import-not-found]

from ringback.engine.webhooks import AppClient, ResponseCache
from ringback.tts import synth
from ringback.twiml.interpreter import Interpreter
from ringback.twiml.testapp import AppServer


def client() -> AppClient:
    return AppClient(ACCOUNT, TOKEN, cache=ResponseCache())


async def run(app: AppServer, ch: FakeChannel, path: str = "/start", method: str = "POST", **kw: object):
    async with ch, client() as c:
        interp = Interpreter(ch, c, app.url(path), method, **kw)  # type: ignore[arg-type]
        return await asyncio.wait_for(interp.run(), 20)


def wav(seconds: float = 0.5, freq: float = 440.0, rate: int = 16000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def test_first_request_params_signature_and_say(app: AppServer) -> None:
    app.twiml("/start", "<Response><Say>Hello there</Say></Response>")
    ch = FakeChannel()
    out = await run(app, ch, extra_params={"DialStatus": "answered"})
    assert out.status == "completed" and not out.app_error
    seen = app.seen[0]
    assert seen.signature_ok and seen.method == "POST"
    assert seen.form["CallSid"] == CALL and seen.form["CallGuid"] == CALL
    assert seen.form["AccountSid"] == ACCOUNT and seen.form["AccountGuid"] == ACCOUNT
    assert seen.form["CallStatus"] == "in-progress" and seen.form["DialStatus"] == "answered"
    assert len(ch.plays) == 1
    expected = synth("Hello there", voice="man", language="en")
    assert np.array_equal(ch.plays[0].pcm, expected)
    assert ch.hangup_called  # the document ran out: the call ends


async def test_get_method_puts_params_in_query(app: AppServer) -> None:
    app.twiml("/start", "<Response/>")
    await run(app, FakeChannel(), method="GET", extra_params={"DialStatus": "answered"})
    seen = app.seen[0]
    assert seen.method == "GET" and seen.query["CallSid"] == CALL and seen.query["DialStatus"] == "answered"
    assert seen.signature_ok


async def test_say_voice_language_loop(app: AppServer) -> None:
    app.twiml("/start", '<Response><Say voice="woman" language="fr" loop="3">Bonjour</Say></Response>')
    ch = FakeChannel()
    await run(app, ch)
    assert len(ch.plays) == 3
    assert np.array_equal(ch.plays[0].pcm, synth("Bonjour", voice="woman", language="fr"))
    assert not np.array_equal(ch.plays[0].pcm, synth("Bonjour", voice="man", language="en"))


async def test_say_loop_zero_repeats_until_hangup(app: AppServer) -> None:
    app.twiml("/start", '<Response><Say loop="0">one two three</Say><Say>never</Say></Response>')
    ch = FakeChannel(hangup_at=0.6)
    out = await run(app, ch)
    assert out.status == "hung_up"
    assert len(ch.plays) >= 3
    assert all(np.array_equal(p.pcm, ch.plays[0].pcm) for p in ch.plays)
    assert not ch.hangup_called


async def test_play_wav_loop_and_resample(app: AppServer) -> None:
    data = wav(0.5, rate=16000)

    @app.route("/a.wav")
    async def _(r: Request) -> Response:
        return Response(data, media_type="audio/wav")

    app.twiml("/start", '<Response><Play loop="2">/a.wav</Play></Response>')
    ch = FakeChannel()
    await run(app, ch)
    assert len(ch.plays) == 2
    assert abs(len(ch.plays[0].pcm) - 4000) < 50  # 0.5 s at 8 kHz
    assert app.seen[1].method == "GET" and app.seen[1].path == "/a.wav"
    assert app.seen[1].signature_ok


async def test_play_loop_zero_until_hangup(app: AppServer) -> None:
    data = wav(1.0)

    @app.route("/a.wav")
    async def _(r: Request) -> Response:
        return Response(data, media_type="audio/x-wav")

    app.twiml("/start", '<Response><Play loop="0">/a.wav</Play></Response>')
    ch = FakeChannel(hangup_at=0.5)
    out = await run(app, ch)
    assert out.status == "hung_up" and len(ch.plays) >= 5


async def test_play_cached_by_etag_across_calls(app: AppServer) -> None:
    data = wav(0.2)

    @app.route("/a.wav")
    async def _(r: Request) -> Response:
        if r.headers.get("if-none-match") == '"x"':
            return Response(status_code=304)
        return Response(data, media_type="audio/wav", headers={"ETag": '"x"'})

    app.twiml("/start", "<Response><Play>/a.wav</Play></Response>")
    cache = ResponseCache()
    plays = []
    for _ in range(2):
        ch = FakeChannel()
        async with ch, AppClient(ACCOUNT, TOKEN, cache=cache) as c:
            await Interpreter(ch, c, app.url("/start")).run()
        plays.append(ch.plays[0].pcm)
    wav_requests = [s for s in app.seen if s.path == "/a.wav"]
    assert "if-none-match" not in wav_requests[0].headers
    assert wav_requests[1].headers["if-none-match"] == '"x"'
    assert np.array_equal(plays[0], plays[1])


async def test_play_invalid_content_type_13420_continues(app: AppServer) -> None:
    @app.route("/a.wav")
    async def _(r: Request) -> Response:
        return Response(b"{}", media_type="application/json")

    app.twiml("/start", "<Response><Play>/a.wav</Play><Say>after</Say></Response>")
    ch = FakeChannel()
    out = await run(app, ch)
    assert 13420 in ch.codes() and out.status == "completed"
    assert len(ch.plays) == 1  # the Say still ran


async def test_pause_length(app: AppServer) -> None:
    app.twiml("/start", '<Response><Say>a</Say><Pause length="1"/><Say>b</Say></Response>')
    ch = FakeChannel()
    await run(app, ch)
    gap = ch.plays[1].start - ch.plays[0].start
    assert 0.95 <= gap < 1.5


async def test_redirect_relative_and_method(app: AppServer) -> None:
    app.twiml("/dir/start", '<Response><Redirect method="GET">next?a=1</Redirect><Say>x</Say></Response>')
    app.twiml("/dir/next", "<Response><Say>next</Say></Response>")
    ch = FakeChannel()
    await run(app, ch, "/dir/start")
    assert [(s.method, s.path) for s in app.seen] == [("POST", "/dir/start"), ("GET", "/dir/next")]
    assert app.seen[1].query["a"] == "1" and app.seen[1].query["CallSid"] == CALL
    assert app.seen[1].signature_ok
    assert len(ch.plays) == 1


async def test_hangup_verb(app: AppServer) -> None:
    app.twiml("/start", "<Response><Hangup/><Say>never</Say></Response>")
    ch = FakeChannel()
    out = await run(app, ch)
    assert out.status == "hangup_verb" and ch.hangup_called and not ch.plays


async def test_audio_response_is_played_then_hangup(app: AppServer) -> None:
    data = wav(0.3)

    @app.route("/start")
    async def _(r: Request) -> Response:
        return Response(data, media_type="audio/wav")

    ch = FakeChannel()
    out = await run(app, ch)
    assert out.status == "completed" and ch.hangup_called
    assert len(ch.plays) == 1 and abs(len(ch.plays[0].pcm) - 2400) < 50


async def test_text_response_is_spoken_then_hangup(app: AppServer) -> None:
    app.twiml("/start", "Your balance is low.", content_type="text/plain")
    ch = FakeChannel()
    out = await run(app, ch)
    assert out.status == "completed" and ch.hangup_called
    assert np.array_equal(ch.plays[0].pcm, synth("Your balance is low."))


async def test_html_response_document_is_twiml(app: AppServer) -> None:
    app.twiml("/start", "<Response><Say>hi</Say></Response>", content_type="text/html")
    ch = FakeChannel()
    out = await run(app, ch)
    assert out.status == "completed" and len(ch.plays) == 1


@pytest.mark.parametrize(
    ("body", "ctype", "code"),
    [
        ("<Response><Say>unclosed</Response>", "text/xml", 12100),
        ("<Reply><Say>x</Say></Reply>", "text/xml", 12102),
        ('<Response version="2010-04-01"><Say>x</Say></Response>', "text/xml", 12101),
        ("{}", "application/json", 12300),
        ("<html>nope</html>", "text/html", 12300),
        ('<!DOCTYPE r [<!ENTITY e "x">]><Response>&e;</Response>', "text/xml", 12100),
    ],
)
async def test_fatal_documents(app: AppServer, body: str, ctype: str, code: int) -> None:
    app.twiml("/start", body, content_type=ctype)
    ch = FakeChannel()
    out = await run(app, ch)
    assert out.app_error and out.error == code
    assert ch.codes() == [code] and ch.notifications[0].log == 0
    n = ch.notifications[0]
    assert n.request_url == app.url("/start") and n.request_method == "POST"
    assert "CallSid=" + CALL in n.request_variables and body[:10] in n.response_body
    assert "content-type" in n.response_headers.lower()
    # The caller hears the error prompt, then the call is hung up.
    assert np.array_equal(ch.plays[-1].pcm, synth("An application error has occurred."))
    assert ch.hangup_called


async def test_http_error_11200_and_fallback_url(app: AppServer) -> None:
    app.twiml("/fallback", "<Response><Say>fallback</Say></Response>")
    ch = FakeChannel()
    out = await run(app, ch, "/missing", fallback_url=app.url("/fallback"), fallback_method="GET")
    assert out.status == "completed"
    assert ch.codes() == [11200]
    assert [(s.method, s.path) for s in app.seen] == [("POST", "/missing"), ("GET", "/fallback")]
    assert app.seen[1].query["CallSid"] == CALL
    assert np.array_equal(ch.plays[0].pcm, synth("fallback"))


async def test_fallback_failure_is_fatal(app: AppServer) -> None:
    app.twiml("/bad", "<Response>", content_type="text/xml")
    ch = FakeChannel()
    out = await run(app, ch, "/missing", fallback_url=app.url("/bad"))
    assert out.app_error and ch.codes() == [11200, 12100]


async def test_schema_warnings_continue(app: AppServer) -> None:
    app.twiml("/start", '<Response><Reject/><Sms>hi</Sms><Foo/><Say bogus="1">ok</Say></Response>')
    ch = FakeChannel()
    out = await run(app, ch)
    assert out.status == "completed" and len(ch.plays) == 1
    assert ch.codes() == [12200, 12200, 12200, 12200]
    assert all(n.log == 1 for n in ch.notifications)


async def test_redirect_loop_is_fatal_after_100_fetches(app: AppServer) -> None:
    app.twiml("/start", "<Response><Redirect>/start</Redirect></Response>")
    ch = FakeChannel()
    out = await run(app, ch)
    assert out.app_error and out.error == 12400
    assert len(app.seen) == 100


async def test_audio_resets_the_fetch_counter(app: AppServer) -> None:
    count = {"n": 0}

    def doc(r: Request) -> str:
        count["n"] += 1
        if count["n"] > 150:
            return "<Response/>"
        say = "<Say>x</Say>" if count["n"] % 50 == 0 else ""
        return f"<Response>{say}<Redirect>/start</Redirect></Response>"

    app.twiml("/start", doc)
    ch = FakeChannel()
    out = await run(app, ch)
    assert out.status == "completed" and count["n"] == 151


async def test_live_redirect_interrupts_current_verb(app: AppServer) -> None:
    app.twiml("/start", '<Response><Pause length="30"/><Say>never</Say></Response>')
    app.twiml("/live", "<Response><Say>live</Say></Response>")
    ch = FakeChannel()
    async with ch, client() as c:
        interp = Interpreter(ch, c, app.url("/start"))
        task = asyncio.create_task(interp.run())
        await asyncio.sleep(0.3)
        interp.redirect(app.url("/live"), "GET")
        out = await asyncio.wait_for(task, 5)
    assert out.status == "completed"
    assert [s.path for s in app.seen] == ["/start", "/live"] and app.seen[1].method == "GET"
    assert len(ch.plays) == 1 and np.array_equal(ch.plays[0].pcm, synth("live"))


async def test_external_cancel_propagates(app: AppServer) -> None:
    app.twiml("/start", '<Response><Pause length="30"/></Response>')
    ch = FakeChannel()
    async with ch, client() as c:
        task = asyncio.create_task(Interpreter(ch, c, app.url("/start")).run())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_remote_hangup_stops_document(app: AppServer) -> None:
    app.twiml("/start", '<Response><Pause length="5"/><Say>never</Say></Response>')
    ch = FakeChannel(hangup_at=0.2)
    out = await run(app, ch)
    assert out.status == "hung_up" and not ch.plays and len(app.seen) == 1


async def test_cookies_kept_during_the_call(app: AppServer) -> None:
    @app.route("/start")
    async def _(r: Request) -> Response:
        resp = Response("<Response><Redirect>/two</Redirect></Response>", media_type="text/xml")
        resp.set_cookie("session", "abc")
        return resp

    app.twiml("/two", "<Response/>")
    await run(app, FakeChannel())
    assert app.seen[1].headers.get("cookie") == "session=abc"
