"""From the app's response leaving the app to the first RTP packet of that audio at the far end.

`ringback serve` runs in its own process with a trunk pointing at this bench's SIP responder
(bench_setup.Responder), whose SDP sends RTP to a sink here. The bench's own HTTP app answers the
first request with <Play> of a WAV (cached after the first fetch), <Say> of fixed text (cached
after the first call) or <Say> of text never seen before, and stamps the moment it wrote the
response; the sink stamps the first RTP packet carrying sound (not u-law silence) from ringback.
Calls run one after another so every packet is unambiguous.

    python bench/engine/bench_first_audio.py [--calls 30]

Targets (issue 4): p50 <= 50 ms for Play of a cached file and Say of cached text, <= 150 ms for
Say of new text.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import secrets
import sys
import tempfile
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import CALLER, Responder, pct, ringback_serve  # noqa: E402


def tone_wav(seconds: float = 0.5) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


class Sink(asyncio.DatagramProtocol):
    """Stamps the first RTP packet whose payload is not u-law silence, per call (one at a time)."""

    def __init__(self) -> None:
        self.after: float = float("inf")  # only sound after this moment counts
        self.first_sound: float | None = None
        self.last_packet = 0.0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.perf_counter()
        self.last_packet = now
        if self.first_sound is not None or now < self.after or len(data) < 12 + 160 or data[1] & 0x7F != 0:
            return
        payload = np.frombuffer(data[12:], dtype=np.uint8)
        # Idle frames are u-law zero (0xFF/0x7F); the prompt's first packet has samples away from
        # zero even where the speech starts softly (a "th" is quiet but it is the prompt's audio).
        if np.count_nonzero((payload & 0x7F) < 0x7C) >= 4:
            self.first_sound = now


@contextlib.asynccontextmanager
async def app(kind: str, state: dict[str, float], on_sent: Callable[[], None]) -> AsyncIterator[int]:
    wav = tone_wav()

    def twiml(port: int) -> bytes:
        if kind == "play":
            return f"<Response><Play>http://127.0.0.1:{port}/tone.wav</Play><Hangup/></Response>".encode()
        if kind == "say-cached":
            return b"<Response><Say>Thank you for calling. Your appointment is confirmed.</Say></Response>"
        word = secrets.token_hex(3)
        return f"<Response><Say>Your reference is {' '.join(word)}. Goodbye.</Say></Response>".encode()

    port_box: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                path = head.split(b" ", 2)[1]
                if path.startswith(b"/tone.wav"):
                    if b"if-none-match" in head.lower():
                        writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "t1"\r\nContent-Length: 0\r\n\r\n')
                    else:
                        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nETag: "t1"\r\n'
                                     b"Content-Length: " + str(len(wav)).encode() + b"\r\n\r\n" + wav)
                else:
                    body = twiml(port_box[0])
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
                    state["app_sent"] = time.perf_counter()
                    on_sent()
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the call ended, or the bench is closing the app
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_box.append(server.sockets[0].getsockname()[1])
    for sock in server.sockets:
        import socket

        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield port_box[0]
    finally:
        server.close()


async def run(kind: str, calls: int, workdir: Path) -> list[float]:
    loop = asyncio.get_running_loop()
    sink_t, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    sink_port = sink_t.get_extra_info("sockname")[1]
    times: dict = {}
    resp_t, resp = await loop.create_datagram_endpoint(lambda: Responder(times, sink_port), local_addr=("127.0.0.1", 0))
    state: dict[str, float] = {}
    out: list[float] = []
    try:
        def armed() -> None:
            sink.after = state["app_sent"]

        async with app(kind, state, armed) as app_port:
            with ringback_serve(f"sip:127.0.0.1:{resp.port}", workdir / kind) as rb:
                async with httpx.AsyncClient(auth=(rb.sid, rb.token), timeout=10) as http:
                    for i in range(calls + 1):  # the first call warms the caches
                        # The previous call is over (no packets for a while) before the next starts.
                        while time.perf_counter() - sink.last_packet < 0.3:
                            await asyncio.sleep(0.05)
                        sink.first_sound, sink.after = None, float("inf")
                        state.pop("app_sent", None)
                        r = await http.post(f"{rb.http}/2008-08-01/Accounts/{rb.sid}/Calls", data={
                            "Caller": CALLER, "Called": "4155550123", "Url": f"http://127.0.0.1:{app_port}/app"})
                        assert r.status_code == 201, r.text
                        deadline = time.monotonic() + 10
                        while sink.first_sound is None and time.monotonic() < deadline:
                            await asyncio.sleep(0.005)
                        if i and sink.first_sound is not None and "app_sent" in state:
                            out.append((sink.first_sound - state["app_sent"]) * 1000)
                        await asyncio.sleep(0.3)
    finally:
        sink_t.close()
        resp_t.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    with open("/proc/loadavg") as f:
        print(f"load average: {f.read().split()[:3]}")
    with tempfile.TemporaryDirectory() as d:
        for kind, target in (("play", 50), ("say-cached", 50), ("say-new", 150)):
            ms = asyncio.run(run(kind, args.calls, Path(d)))
            print(f"{kind:<11} n={len(ms):3d}  p50={pct(ms, 50):7.1f} ms  p95={pct(ms, 95):7.1f} ms  "
                  f"max={max(ms) if ms else float('nan'):7.1f} ms   target p50 <= {target} ms")


if __name__ == "__main__":
    main()
