"""TwiML fetch-parse-execute loop: <Redirect> between two documents on a local app.

Prints steps per second on one call, and how late a 20 ms ticker (standing in
for the media clock) ran meanwhile.  The app (Starlette on uvicorn) runs in
the same process, so its cost is included.

    python bench/twiml/fetch_loop.py [steps]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import numpy as np

from ringback.engine.webhooks import AppClient, ResponseCache
from ringback.twiml.channel import Notification
from ringback.twiml.interpreter import Interpreter
from ringback.twiml.testapp import serve_app

TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT = "AC" + "1" * 32


class NullChannel:
    def __init__(self) -> None:
        self.call_sid = "CA" + "2" * 32
        self.account_sid = ACCOUNT
        self.params = {"CallSid": self.call_sid, "AccountSid": ACCOUNT, "Caller": "4155550100",
                       "Called": "5005551000", "CallStatus": "in-progress"}
        self.hung_up = asyncio.Event()
        self.is_segment = False
        self.notifications: list[Notification] = []

    async def play(self, pcm: np.ndarray, interruptible: bool = False) -> str | None:
        return None

    async def next_digit(self, timeout: float) -> str | None:
        return None

    def flush_digits(self) -> None:
        pass

    def add_tap(self, fn: Callable[[np.ndarray, float], None]) -> Callable[[], None]:
        return lambda: None

    async def hangup(self) -> None:
        self.hung_up.set()

    async def notify(self, n: Notification) -> None:
        self.notifications.append(n)


async def ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    nxt = loop.time() + 0.02
    while not stop.is_set():
        await asyncio.sleep(max(0.0, nxt - loop.time()))
        lateness.append(loop.time() - nxt)
        nxt += 0.02


async def main(steps: int) -> None:
    async with serve_app(TOKEN) as app:
        count = {"n": 0}

        def doc(target: str) -> Callable[[object], str]:
            def body(_: object) -> str:
                count["n"] += 1
                if count["n"] >= steps:
                    return "<Response/>"
                return f'<Response><Redirect method="POST">{target}</Redirect></Response>'
            return body

        app.twiml("/a", doc("/b"))
        app.twiml("/b", doc("/a"))
        stop = asyncio.Event()
        lateness: list[float] = []
        tick = asyncio.create_task(ticker(stop, lateness))
        ch = NullChannel()
        async with AppClient(ACCOUNT, TOKEN, cache=ResponseCache()) as client:
            interp = Interpreter(ch, client, app.url("/a"), max_fetches_without_audio=10**9)
            t0 = time.perf_counter()
            out = await interp.run()
            dt = time.perf_counter() - t0
        stop.set()
        await tick
        assert out.status == "completed", out
        assert all(s.signature_ok for s in app.seen[:10])
        late = np.array(lateness) * 1000
        print(f"steps: {interp.steps}  time: {dt:.2f} s  steps/s: {interp.steps / dt:.0f}  "
              f"per step: {dt / interp.steps * 1000:.2f} ms")
        print(f"20 ms ticker lateness: p50 {np.percentile(late, 50):.2f} ms  "
              f"p99 {np.percentile(late, 99):.2f} ms  max {late.max():.2f} ms  ({len(late)} ticks)")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
