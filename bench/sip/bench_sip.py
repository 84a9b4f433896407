"""SIP stack benchmark: parse/serialise throughput and UA<->UA call set-ups per second on loopback.

    python bench/sip/bench_sip.py [--calls 500] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from ringback.sip.message import parse_message
from ringback.sip.sdp import make_answer, make_offer
from ringback.sip.ua import Answered, Hangup, IncomingCall, UserAgent

OFFER = make_offer("127.0.0.1", 20000, session_id=12345)
INVITE = (
    b"INVITE sip:+14155551212@127.0.0.1:5070 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:+15005551000@127.0.0.1>;tag=1928301774\r\n'
    b"To: <sip:+14155551212@127.0.0.1>\r\n"
    b"Call-ID: a84b4c76e66710@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:ringback@127.0.0.1:5060>\r\n"
    b"User-Agent: ringback\r\n"
    b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n"
    b"Content-Type: application/sdp\r\n"
) + b"Content-Length: %d\r\n\r\n" % len(OFFER) + OFFER


def bench_parse(n: int) -> None:
    t0 = time.perf_counter()
    for _ in range(n):
        parse_message(INVITE)
    t1 = time.perf_counter()
    msg = parse_message(INVITE)
    for _ in range(n):
        bytes(msg)
    t2 = time.perf_counter()
    print(f"parse      {n / (t1 - t0):10.0f} msgs/s  ({len(INVITE)}-byte INVITE with SDP)")
    print(f"serialise  {n / (t2 - t1):10.0f} msgs/s")


async def bench_calls(total: int, concurrency: int) -> None:
    async def on_invite(call: IncomingCall) -> None:
        assert call.remote_sdp is not None
        body, _ = make_answer(call.remote_sdp, "127.0.0.1", 30000)
        await call.answer(body)
        await call.events.get()

    callee = UserAgent("127.0.0.1", 0, on_invite=on_invite, t1=0.5)
    caller = UserAgent("127.0.0.1", 0, t1=0.5)
    await callee.start()
    await caller.start()
    sem = asyncio.Semaphore(concurrency)
    setup: list[float] = []
    offer = make_offer("127.0.0.1", 20000)

    async def one(i: int) -> None:
        async with sem:
            t = time.perf_counter()
            call = await caller.invite(f"sip:+1415555{i % 10000:04d}@127.0.0.1:{callee.port}",
                                       from_uri="sip:+15005551000@127.0.0.1", sdp=offer)
            ev = await asyncio.wait_for(call.events.get(), 10)
            assert isinstance(ev, Answered), ev
            setup.append(time.perf_counter() - t)
            await call.bye()
            assert isinstance(await call.events.get(), Hangup)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    dt = time.perf_counter() - t0
    setup.sort()
    print(f"calls      {total / dt:10.0f} call set-ups+teardowns/s  ({total} calls, {concurrency} in flight, "
          "caller and callee in this one process)")
    print(f"setup p50  {statistics.median(setup) * 1000:10.2f} ms   p99 {setup[int(len(setup) * 0.99) - 1] * 1000:.2f} ms"
          "  (INVITE -> 200 OK received)")
    print(f"stats      caller {caller.stats}\n           callee {callee.stats}")
    await caller.close()
    await callee.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=100)
    args = ap.parse_args()
    bench_parse(args.messages)
    asyncio.run(bench_calls(args.calls, args.concurrency))


if __name__ == "__main__":
    main()
