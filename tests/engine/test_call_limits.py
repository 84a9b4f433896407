"""Limits that stop stuck calls and pace the dialer: maximum call length, no RTP for too long,
calls per second per account."""

from __future__ import annotations

import asyncio

from ringback.server import RingbackServer
from ringback.twiml.testapp import serve_app
from tests.support.harness import Harness, fast_settings


async def _harness(tmp_path, **overrides):  # type: ignore[no-untyped-def]
    server = RingbackServer(fast_settings(tmp_path, **overrides))
    await server.start()
    return server


async def test_max_call_length_and_rtp_timeout_end_stuck_calls(tmp_path) -> None:
    server = await _harness(tmp_path, max_call_seconds=2.0, rtp_timeout=1.0)
    try:
        async with serve_app(server.account[1]) as app:  # type: ignore[index]
            h = Harness(server, app)
            h.server.sandbox.plan.add({"number": "5005550350", "ring": 0.2, "rtp_stop_after": 0.5,  # type: ignore[union-attr]
                                       "hangup_after": 30.0})
            app.twiml("/app", '<Response><Pause length="30"/></Response>')
            long_sid, dead_sid = await asyncio.gather(h.make_call("5005550110"), h.make_call("5005550350"))
            long_call, dead_call = await asyncio.gather(h.wait_final(long_sid, 15), h.wait_final(dead_sid, 15))
            # Both ended by ringback, long before the 30 s pause or the phone's own hangup.
            assert long_call["Status"] == "2" and int(long_call["Duration"]) <= 4
            assert dead_call["Status"] == "2" and int(dead_call["Duration"]) <= 4
            long_heard, dead_heard = await h.heard(long_sid), await h.heard(dead_sid)
            assert long_heard.hung_up_by == "remote" and dead_heard.hung_up_by == "remote"
            await h.http.aclose()
    finally:
        await server.stop(grace=2)


async def test_calls_per_second_pacing_per_account(tmp_path) -> None:
    server = await _harness(tmp_path, cps=2.0)
    try:
        async with serve_app(server.account[1]) as app:  # type: ignore[index]
            h = Harness(server, app)
            app.twiml("/app", "<Response><Hangup/></Response>")
            sids = await asyncio.gather(*(h.make_call(f"500555011{i}") for i in range(6)))
            await asyncio.gather(*(h.wait_final(s, 20) for s in sids))
            invited = sorted([(await h.heard(s)).invited_at for s in sids])
            # 2 calls/s with a burst of one second's worth: 6 INVITEs span at least ~2 s. (Only the
            # lower bound is a property: a busy machine can only stretch the span, never shrink it.)
            assert invited[-1] - invited[0] >= 1.8, invited
            await h.http.aclose()
    finally:
        await server.stop(grace=2)


async def test_a_paced_dialer_woken_by_new_calls_writes_nothing_until_it_may_dial(tmp_path) -> None:
    """The API wakes the dialer once per created call. While the only queued call's account is
    paced, those wake-ups must not each run a claim transaction: on SQLite every one took the
    write turn POST /Calls waits for. They look first, with a plain read."""
    server = await _harness(tmp_path, cps=0.25)  # one call per 4 s
    try:
        async with serve_app(server.account[1]) as app:  # type: ignore[index]
            h = Harness(server, app)
            app.twiml("/app", "<Response><Hangup/></Response>")
            first = await h.make_call("5005550190")  # busy: claimed at once, over in a moment
            await h.wait_final(first, 10)
            second = await h.make_call("5005550190")  # paced: waits about 4 s for its turn
            await asyncio.sleep(0.3)  # its creation's own wake-up has come and gone
            writer, dialer = server.store.writer, server.dialer
            assert dialer is not None
            jobs = writer.jobs
            for _ in range(40):
                dialer.wake()
                await asyncio.sleep(0.02)
            assert writer.jobs == jobs, "a paced wake-up ran a write transaction"
            assert (await h.call_json(second))["Status"] == "0"  # still queued, not lost
            final = await h.wait_final(second, 15)
            assert final["Status"] in ("2", "3", "4")  # dialled when its turn came
            await h.http.aclose()
    finally:
        await server.stop(grace=2)


async def test_calls_beyond_the_nodes_capacity_wait_in_the_queue(tmp_path) -> None:
    """--max-calls 2: six calls queued at once are carried two at a time, and none fails."""
    server = await _harness(tmp_path, max_calls=2)
    try:
        async with serve_app(server.account[1]) as app:  # type: ignore[index]
            h = Harness(server, app)
            app.twiml("/app", '<Response><Pause length="1"/><Hangup/></Response>')
            most = 0
            sampling = True

            async def sample() -> None:
                nonlocal most
                while sampling:
                    most = max(most, server.dialer.live)  # type: ignore[union-attr]
                    await asyncio.sleep(0.01)

            sampler = asyncio.ensure_future(sample())
            sids = await asyncio.gather(*(h.make_call(f"500555012{i}") for i in range(6)))
            calls = await asyncio.gather(*(h.wait_final(s, 30) for s in sids))
            sampling = False
            await sampler
            assert [c["Status"] for c in calls] == ["2"] * 6  # all answered and completed
            assert most == 2  # the cap was reached and never passed
            answered = sorted([(await h.heard(s)).invited_at for s in sids])
            # two at a time, each about a second long: the last INVITE waits for two rounds to end
            assert answered[-1] - answered[0] >= 1.5, answered
            await h.http.aclose()
    finally:
        await server.stop(grace=2)


async def test_inbound_invites_only_from_allowed_sources(tmp_path) -> None:
    """No toll fraud: an INVITE from outside --sip-allow is refused (403) before any app runs."""
    server = await _harness(tmp_path, sip_allow=["10.0.0.0/8"])
    try:
        async with serve_app(server.account[1]) as app:  # type: ignore[index]
            h = Harness(server, app)
            ua = server.ua
            heard = await server.sandbox.call("4155550123", "5005551000", ua.host, ua.port)  # type: ignore[union-attr]
            assert heard.result == "failed" and heard.sip_code == 403
            assert not app.seen
            await h.http.aclose()
    finally:
        await server.stop(grace=2)
