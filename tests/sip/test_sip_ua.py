"""The asyncio UserAgent on loopback: real sockets, UA <-> UA calls over UDP and TCP."""

import asyncio
import time

import pytest

from ringback.sip.events import Answered, Cancelled, Dtmf, Failed, Hangup, Ringing
from ringback.sip.sdp import make_answer, make_offer, parse_answer
from ringback.sip.ua import IncomingCall, UserAgent

T1 = 0.01  # shrinks every RFC timer proportionally so calls clean up in ~0.7 s


async def next_event(call, timeout=3.0):
    return await asyncio.wait_for(call.events.get(), timeout)


async def wait_idle(*uas, timeout=5.0):
    t0 = time.monotonic()
    while not all(ua.idle for ua in uas):
        assert time.monotonic() - t0 < timeout, [(ua.endpoint.calls, ua.endpoint.transactions) for ua in uas]
        await asyncio.sleep(0.02)


class Phone:
    """A callee app: does `behaviour` and remembers the IncomingCall objects and their events."""

    def __init__(self, behaviour="answer"):
        self.behaviour = behaviour
        self.calls: list[IncomingCall] = []
        self.events: list = []

    async def __call__(self, call: IncomingCall):
        self.calls.append(call)
        if self.behaviour.startswith("reject"):
            await call.reject(int(self.behaviour.split(":")[1]))
            return
        await call.ringing(180)
        if self.behaviour == "ring":
            self.events.append(await call.events.get())
            return
        body, _ = make_answer(call.remote_sdp, "127.0.0.1", 30000)
        await call.answer(body)
        if self.behaviour == "answer+bye":
            await asyncio.sleep(0.1)
            await call.bye()
        self.events.append(await call.events.get())


@pytest.fixture
async def uas():
    made = []

    async def make(handler=None, **kw):
        ua = UserAgent("127.0.0.1", 0, on_invite=handler, t1=T1, **kw)
        await ua.start()
        made.append(ua)
        return ua

    yield make
    for ua in made:
        await ua.close()


def target(ua, user="+14155551212", transport="udp"):
    t = f";transport={transport}" if transport != "udp" else ""
    return f"sip:{user}@127.0.0.1:{ua.port}{t}"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_call_answered_and_caller_hangs_up(uas, transport):
    phone = Phone()
    callee = await uas(phone)
    caller = await uas()
    assert callee.port != 0 and caller.port != callee.port
    call = await caller.invite(target(callee, transport=transport), from_uri="sip:+15005551000@127.0.0.1",
                               sdp=make_offer("127.0.0.1", 20000))
    assert await next_event(call) == Ringing(180, None)
    ev = await next_event(call)
    assert isinstance(ev, Answered) and parse_answer(ev.sdp).remote_port == 30000
    assert call.final_code == 200 and call.remote_sdp == ev.sdp
    inc = phone.calls[0]
    assert (inc.request_uri_user, inc.from_user, inc.to_user) == ("+14155551212", "+15005551000", "+14155551212")
    assert inc.remote_sdp and b"m=audio 20000" in inc.remote_sdp and inc.request.method == "INVITE"
    await asyncio.sleep(0.05)
    await call.bye()
    assert await next_event(call) == Hangup(False)
    await asyncio.sleep(0.1)
    assert phone.events == [Hangup(True)]
    if transport == "tcp":
        assert callee._transport.tcp_conns  # it really went over TCP
    await wait_idle(caller, callee)


async def test_callee_hangs_up(uas):
    callee = await uas(Phone("answer+bye"))
    caller = await uas()
    call = await caller.invite(target(callee), from_uri="sip:a@127.0.0.1", sdp=make_offer("127.0.0.1", 1))
    assert isinstance(await next_event(call), Ringing)
    assert isinstance(await next_event(call), Answered)
    assert await next_event(call) == Hangup(True)
    await wait_idle(caller, callee)


@pytest.mark.parametrize("code", [486, 404, 603])
async def test_rejected(uas, code):
    callee = await uas(Phone(f"reject:{code}"))
    caller = await uas()
    call = await caller.invite(target(callee), from_uri="sip:a@127.0.0.1", sdp=make_offer("127.0.0.1", 1))
    ev = await next_event(call)
    assert isinstance(ev, Failed) and ev.code == code and call.final_code == code
    await wait_idle(caller, callee)


async def test_no_handler_answers_404(uas):
    callee = await uas(None)
    caller = await uas()
    call = await caller.invite(target(callee), from_uri="sip:a@127.0.0.1", sdp=make_offer("127.0.0.1", 1))
    assert (await next_event(call)).code == 404
    await wait_idle(caller, callee)


async def test_cancel_while_ringing(uas):
    phone = Phone("ring")
    callee = await uas(phone)
    caller = await uas()
    call = await caller.invite(target(callee), from_uri="sip:a@127.0.0.1", sdp=make_offer("127.0.0.1", 1))
    assert await next_event(call) == Ringing(180, None)
    await call.cancel()
    assert await next_event(call) == Failed(487, "Request Terminated")
    await asyncio.sleep(0.05)
    assert phone.events == [Cancelled()]
    await wait_idle(caller, callee)


async def test_digest_challenged_invite(uas):
    callee = await uas(Phone(), credentials={"trunk": "pw"})
    caller = await uas()
    call = await caller.invite(target(callee), from_uri="sip:a@127.0.0.1", sdp=make_offer("127.0.0.1", 1),
                               auth=("trunk", "pw"))
    assert isinstance(await next_event(call), Ringing)
    assert isinstance(await next_event(call), Answered)
    await call.bye()
    bad = await caller.invite(target(callee), from_uri="sip:a@127.0.0.1", sdp=make_offer("127.0.0.1", 1),
                              auth=("trunk", "wrong"))
    assert await next_event(call) == Hangup(False)
    assert (await next_event(bad)).code == 401
    await wait_idle(caller, callee)


async def test_info_dtmf_and_malformed_datagrams_counted(uas):
    phone = Phone()
    callee = await uas(phone)
    caller = await uas()
    call = await caller.invite(target(callee), from_uri="sip:a@127.0.0.1", sdp=make_offer("127.0.0.1", 1))
    await next_event(call)
    await next_event(call)
    await call.send_info_dtmf("5")
    await asyncio.sleep(0.1)
    # garbage at the callee's port must be counted, not crash anything
    loop = asyncio.get_running_loop()
    tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=("127.0.0.1", callee.port))
    tr.sendto(b"\x00\xffnot sip at all")
    tr.sendto(b"INVITE sip:x SIP/2.0\r\n\r\n")
    await asyncio.sleep(0.1)
    tr.close()
    assert callee.stats["malformed"] == 2
    await call.bye()
    assert await next_event(call) == Hangup(False)
    assert phone.events == [Dtmf("5", 160)]
    await wait_idle(caller, callee)


async def test_unreachable_peer_times_out_408(uas):
    caller = await uas()
    # a bound socket that never answers
    loop = asyncio.get_running_loop()
    tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    port = tr.get_extra_info("sockname")[1]
    try:
        call = await caller.invite(f"sip:x@127.0.0.1:{port}", from_uri="sip:a@127.0.0.1",
                                   sdp=make_offer("127.0.0.1", 1))
        assert await next_event(call, timeout=5) == Failed(408, "Request Timeout")
    finally:
        tr.close()
    await wait_idle(caller)


async def test_many_concurrent_calls_leave_nothing_behind(uas):
    callee = await uas(Phone("answer+bye"))
    caller = await uas()
    calls = [await caller.invite(target(callee, f"+1415555{i:04d}"), from_uri="sip:a@127.0.0.1",
                                 sdp=make_offer("127.0.0.1", 1)) for i in range(30)]
    for call in calls:
        evs = [await next_event(call) for _ in range(3)]
        assert [type(e) for e in evs] == [Ringing, Answered, Hangup]
    await wait_idle(caller, callee)
