"""Trunk features against SIPp on loopback, through the asyncio UserAgent: REGISTER with digest and refresh,
a reliable 183 that must be PRACKed plus a session timer we refresh, a caller that requires 100rel and
puts us on hold, and inbound source filtering on real sockets."""

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from ringback.sip.events import Answered, Failed, Hangup, MediaChanged, Ringing
from ringback.sip.sdp import make_answer, make_offer
from ringback.sip.ua import IncomingCall, UserAgent

from .test_sip_interop_sipp import SCEN, finish, free_port, next_event, start_sipp, wait_idle

CAPTURES = Path(__file__).parent / "captures"


def tap(ua: UserAgent, name: str) -> None:
    """With RINGBACK_RECORD_CAPTURES=1, keep what SIPp sends us in tests/sip/captures/ (the offline corpus)."""
    if not os.environ.get("RINGBACK_RECORD_CAPTURES"):
        return
    feed = ua.endpoint.receive_datagram
    count = [0]

    def record(data, addr, now, transport="udp"):
        CAPTURES.mkdir(exist_ok=True)
        (CAPTURES / f"sipp-{name}-{count[0]:02d}.sip").write_bytes(data)
        count[0] += 1
        feed(data, addr, now, transport)
    ua.endpoint.receive_datagram = record  # type: ignore[method-assign]


needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) not installed")


@pytest.fixture
async def ua():
    agent = UserAgent("127.0.0.1", 0, t1=0.02)
    await agent.start()
    yield agent
    await agent.close()


@pytest.mark.interop
@needs_sipp
async def test_register_with_digest_refresh_and_unregister_on_close(ua):
    tap(ua, "register")
    proc, port = await start_sipp("uas_register.xml")
    reg = await ua.register(f"sip:127.0.0.1:{port}", "sip:+15005551000@127.0.0.1", auth=("1000", "s3cret"),
                            expires=600)
    assert await reg.wait_registered(5)
    assert reg.expires == 2
    await reg.wait_change(5)  # the refresh, a second after: challenged and answered again
    assert reg.registered and reg.expires == 3600
    await reg.close()
    assert not reg.registered
    await finish(proc)
    await wait_idle(ua)


@pytest.mark.interop
@needs_sipp
async def test_reliable_183_is_pracked_and_session_refreshed(ua):
    tap(ua, "100rel-uas")
    proc, port = await start_sipp("uas_100rel.xml")
    call = await ua.invite(f"sip:+14155551212@127.0.0.1:{port}", from_uri="sip:+15005551000@127.0.0.1",
                           sdp=make_offer("127.0.0.1", 20000))
    assert await next_event(call) == Ringing(183, None)
    assert isinstance(await next_event(call), Answered)
    await asyncio.sleep(1.5)  # SIPp granted 2 s with us as refresher: an UPDATE must have gone out
    await call.bye()
    assert await next_event(call) == Hangup(False)
    await finish(proc)
    await wait_idle(ua)


@pytest.mark.interop
@needs_sipp
async def test_caller_requiring_100rel_then_hold_and_resume():
    events: list = []

    async def on_invite(call: IncomingCall) -> None:
        await call.ringing(180)
        await asyncio.sleep(0.3)  # time for the PRACK before we answer
        body, _ = make_answer(call.remote_sdp, "127.0.0.1", 30000)
        await call.answer(body)
        while True:
            ev = await call.events.get()
            events.append(ev)
            if isinstance(ev, Hangup):
                return

    agent = UserAgent("127.0.0.1", 0, t1=0.02, on_invite=on_invite)
    await agent.start()
    tap(agent, "100rel-hold-uac")
    try:
        proc = await asyncio.create_subprocess_exec(
            "sipp", f"127.0.0.1:{agent.port}", "-sf", str(SCEN / "uac_100rel_hold.xml"), "-s", "+15005551000",
            "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port()), "-m", "1", "-nostdin",
            "-timeout", "15s", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await finish(proc)
        await asyncio.sleep(0.1)
        assert [type(e) for e in events] == [MediaChanged, MediaChanged, Hangup]
        assert [e.direction for e in events[:2]] == ["sendonly", "sendrecv"]
        await wait_idle(agent)
    finally:
        await agent.close()


async def test_allowed_sources_on_real_sockets():
    answered: list[str] = []

    async def on_invite(call: IncomingCall) -> None:
        body, _ = make_answer(call.remote_sdp, "127.0.0.1", 30000)
        answered.append(call.call_id)
        await call.answer(body)

    callee = UserAgent("127.0.0.1", 0, t1=0.02, on_invite=on_invite, allowed_sources=["192.0.2.0/24"])
    caller = UserAgent("127.0.0.1", 0, t1=0.02)
    await callee.start()
    await caller.start()
    try:
        out = await caller.invite(f"sip:+15005551000@127.0.0.1:{callee.port}", from_uri="sip:x@127.0.0.1",
                                  sdp=make_offer("127.0.0.1", 20000))
        assert await next_event(out) == Failed(403, "Forbidden")
        assert answered == [] and callee.stats["refused_source"] == 1
        callee.endpoint.allowed_sources = None  # the same caller, now trusted: it gets through
        out = await caller.invite(f"sip:+15005551000@127.0.0.1:{callee.port}", from_uri="sip:x@127.0.0.1",
                                  sdp=make_offer("127.0.0.1", 20000))
        assert isinstance(await next_event(out), Answered)
        await out.bye()
        assert await next_event(out) == Hangup(False)
        await wait_idle(caller)
        await wait_idle(callee)
    finally:
        await caller.close()
        await callee.close()
