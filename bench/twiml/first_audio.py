"""Latency from the app's response leaving the handler to the interpreter handing
audio to the channel (Channel.play), for Play of a cached file, Say of cached
text and Say of new text.  The media layer's own delay to the first RTP packet
comes on top (measured in the engine's benchmarks).

    python bench/twiml/first_audio.py [runs]
"""

from __future__ import annotations

import asyncio
import io
import sys
import time

import numpy as np
import soundfile as sf
from fetch_loop import ACCOUNT, TOKEN, NullChannel  # type: ignore[import-not-found]
from starlette.requests import Request
from starlette.responses import Response

from ringback.engine.webhooks import AppClient, ResponseCache
from ringback.twiml.interpreter import Interpreter
from ringback.twiml.testapp import serve_app


class TimedChannel(NullChannel):
    def __init__(self) -> None:
        super().__init__()
        self.first_play: float | None = None

    async def play(self, pcm: np.ndarray, interruptible: bool = False) -> str | None:
        if self.first_play is None:
            self.first_play = time.perf_counter()
        return None


async def main(runs: int) -> None:
    t = np.arange(8000 * 3) / 8000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000, format="MP3")
    mp3 = buf.getvalue()
    sent: dict[str, float] = {}
    async with serve_app(TOKEN) as app:
        @app.route("/hold.mp3")
        async def _(r: Request) -> Response:
            if r.headers.get("if-none-match") == '"1"':
                return Response(status_code=304)
            return Response(mp3, media_type="audio/mpeg", headers={"ETag": '"1"'})

        counter = {"n": 0}

        def doc(kind: str):  # type: ignore[no-untyped-def]
            async def handler(r: Request) -> Response:
                counter["n"] += 1
                body = {
                    "play": "<Play>/hold.mp3</Play>",
                    "say": "<Say>Thank you for calling. Please hold.</Say>",
                    "new": f"<Say>Your order number {counter['n']} will ship on day {counter['n'] % 7}.</Say>",
                }[kind]
                sent["t"] = time.perf_counter()
                return Response(f"<Response>{body}</Response>", media_type="text/xml")
            return handler

        cache = ResponseCache()
        for kind in ("play", "say", "new"):
            app.routes["/" + kind] = doc(kind)
            lat = []
            for i in range(runs + 1):
                ch = TimedChannel()
                async with AppClient(ACCOUNT, TOKEN, cache=cache) as c:
                    await Interpreter(ch, c, app.url("/" + kind)).run()
                assert ch.first_play is not None
                if i:  # the first run warms the caches
                    lat.append((ch.first_play - sent["t"]) * 1000)
            a = np.array(lat)
            print(f"{kind:5s} response->play: p50 {np.percentile(a, 50):6.2f} ms  "
                  f"p90 {np.percentile(a, 90):6.2f} ms  max {a.max():6.2f} ms  (n={len(a)})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
