"""Interop against SIPp (Debian sip-tester) on loopback: SIPp as the callee, and SIPp calling us."""

import asyncio
import contextlib
import shutil
from pathlib import Path

import pytest

from ringback.control import free_udp_tcp_port as free_port  # SIPp binds UDP and TCP
from ringback.sip.events import Answered, Failed, Hangup, Ringing
from ringback.sip.sdp import make_answer, make_offer, parse_answer
from ringback.sip.ua import IncomingCall, UserAgent

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) not installed")]
SCEN = Path(__file__).parent / "scenarios"


async def start_sipp(scenario: str, *args: str, transport: str = "udp") -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCEN / scenario), "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_port()),
        "-m", "1", "-nostdin", "-timeout", "15s", "-t", "t1" if transport == "tcp" else "u1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await asyncio.sleep(0.4)  # let it bind
    return proc, port


async def finish(proc: asyncio.subprocess.Process) -> None:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, (out.decode(errors="replace")[-2000:], err.decode(errors="replace")[-2000:])


async def next_event(call, timeout=5.0):
    return await asyncio.wait_for(call.events.get(), timeout)


async def wait_idle(ua, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if ua.idle:
            return
        await asyncio.sleep(0.05)
    raise AssertionError((ua.endpoint.calls, ua.endpoint.transactions))


@pytest.fixture
async def ua():
    agent = UserAgent("127.0.0.1", 0, t1=0.02)
    await agent.start()
    yield agent
    await agent.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_answers_and_hangs_up(ua, transport):
    proc, port = await start_sipp("uas_answer_bye.xml", transport=transport)
    t = f"sip:+14155551212@127.0.0.1:{port}" + (";transport=tcp" if transport == "tcp" else "")
    call = await ua.invite(t, from_uri="sip:+15005551000@127.0.0.1", sdp=make_offer("127.0.0.1", 20000))
    assert await next_event(call) == Ringing(180, None)
    ev = await next_event(call)
    assert isinstance(ev, Answered)
    mp = parse_answer(ev.sdp)
    assert mp.payload_type == 0 and mp.telephone_event_pt == 120
    assert await next_event(call) == Hangup(True)
    await finish(proc)
    await wait_idle(ua)


async def test_sipp_busy(ua):
    proc, port = await start_sipp("uas_busy.xml")
    call = await ua.invite(f"sip:+14155551212@127.0.0.1:{port}", from_uri="sip:a@127.0.0.1",
                           sdp=make_offer("127.0.0.1", 20000))
    assert await next_event(call) == Failed(486, "Busy Here")
    await finish(proc)
    await wait_idle(ua)


async def test_sipp_ring_until_cancel(ua):
    proc, port = await start_sipp("uas_ring_cancel.xml")
    call = await ua.invite(f"sip:+14155551212@127.0.0.1:{port}", from_uri="sip:a@127.0.0.1",
                           sdp=make_offer("127.0.0.1", 20000))
    assert await next_event(call) == Ringing(180, None)
    await asyncio.sleep(0.2)
    await call.cancel()
    assert await next_event(call) == Failed(487, "Request Terminated")
    await finish(proc)
    await wait_idle(ua)


async def test_sipp_digest_challenge(ua):
    proc, port = await start_sipp("uas_auth.xml")
    call = await ua.invite(f"sip:+14155551212@127.0.0.1:{port}", from_uri="sip:a@127.0.0.1",
                           sdp=make_offer("127.0.0.1", 20000), auth=("trunkuser", "s3cret"))
    ev = await next_event(call)
    assert isinstance(ev, Answered) and parse_answer(ev.sdp).payload_type == 8
    await call.bye()
    assert await next_event(call) == Hangup(False)
    await finish(proc)
    await wait_idle(ua)


async def test_sipp_calls_us():
    seen: list[IncomingCall] = []
    hangups = []

    async def on_invite(call: IncomingCall) -> None:
        seen.append(call)
        await call.ringing(180)
        body, mp = make_answer(call.remote_sdp, "127.0.0.1", 30000)
        await call.answer(body)
        hangups.append(await call.events.get())

    agent = UserAgent("127.0.0.1", 0, t1=0.02, on_invite=on_invite)
    await agent.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            "sipp", f"127.0.0.1:{agent.port}", "-sf", str(SCEN / "uac_call.xml"), "-s", "+15005551000",
            "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port()), "-m", "1", "-nostdin",
            "-timeout", "15s", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await finish(proc)
        assert len(seen) == 1 and seen[0].request_uri_user == "+15005551000"
        assert seen[0].from_user == "+15005550100"
        assert hangups == [Hangup(True)]
        await wait_idle(agent)
    finally:
        await agent.close()
