"""The engine's HTTP/1.1 transport for app requests (ringback.engine.http_transport), against real
servers on loopback: keep-alive, servers that close idle connections, bodies framed every way
HTTP/1.1 allows, TLS, and a server that accepts and never answers."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from ringback.engine.http_transport import AppTransport
from ringback.engine.webhooks import AppClient, ResponseCache, shared_client

TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT = "AC" + "0" * 32
TWIML = b"<Response><Say>hi</Say></Response>"


class RawServer:
    """An HTTP/1.1 server on asyncio streams that answers each request with `reply(n)` (n counts
    requests) and can close connections after a request; it counts the connections it accepts."""

    def __init__(self, reply: bytes | None = None, *, close_after: bool = False) -> None:
        self.reply = reply or (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
                               % len(TWIML) + TWIML)
        self.close_after = close_after
        self.connections = 0
        self.requests = 0
        self.server: asyncio.base_events.Server | None = None

    async def handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":", 1)[1])
                if n:
                    await r.readexactly(n)
                self.requests += 1
                w.write(self.reply)
                await w.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    async def start(self, ssl_ctx: ssl.SSLContext | None = None) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=ssl_ctx)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if ssl_ctx else 'http'}://127.0.0.1:{port}/app"

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def app_client(**kw: object) -> AppClient:
    return AppClient(ACCOUNT, TOKEN, cache=ResponseCache(), **kw)  # type: ignore[arg-type]


async def test_sequential_requests_share_one_keep_alive_connection() -> None:
    server = RawServer()
    url = await server.start()
    transport = AppTransport()
    shared = shared_client(transport)
    try:
        for _ in range(20):
            res = await app_client(client=shared).fetch(url, "POST", {"CallSid": "CA1"})
            assert res.ok and res.body == TWIML
    finally:
        await shared.aclose()
        server.close()
    assert (server.connections, server.requests) == (1, 20)
    assert transport.in_flight() == 0


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    """A server that closes after each response (as servers do with idle keep-alive connections):
    every request still succeeds, each on a connection of its own."""
    server = RawServer(close_after=True)
    url = await server.start()
    shared = shared_client()
    try:
        for _ in range(5):
            res = await app_client(client=shared).fetch(url, "POST", {})
            assert res.ok
            await asyncio.sleep(0.01)  # let the close arrive, as it would between calls
    finally:
        await shared.aclose()
        server.close()
    assert (server.connections, server.requests) == (5, 5)


async def test_a_request_racing_the_servers_close_goes_again_on_a_new_connection() -> None:
    """A keep-alive connection the server drops just as the next request arrives (it reads the
    request and closes without a byte of answer): that request never reached the app, so it goes
    again, once, on a new connection."""
    heads: list[int] = []

    async def one_answer_per_connection(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        conn = len(heads)
        heads.append(0)
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                n = next((int(x.split(b":", 1)[1]) for x in head.split(b"\r\n")
                          if x.lower().startswith(b"content-length:")), 0)
                await r.readexactly(n)
                heads[conn] += 1
                if heads[conn] > 1:
                    break  # the idle connection "timed out" as this request came in
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
                        % len(TWIML) + TWIML)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    srv = await asyncio.start_server(one_answer_per_connection, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/app"
    shared = shared_client()
    try:
        assert (await app_client(client=shared).fetch(url, "POST", {})).ok
        res = await app_client(client=shared).fetch(url, "POST", {"n": "2"})
    finally:
        await shared.aclose()
        srv.close()
    assert res.ok and res.body == TWIML
    assert heads == [2, 1]  # sent on the dropped connection, then once more on a new one


@pytest.mark.parametrize(
    "reply",
    [
        # chunked
        b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"a\r\n<Response>\r\n" + b"%x\r\n" % len(b"<Say>hi</Say></Response>") + b"<Say>hi</Say></Response>\r\n0\r\n\r\n",
        # no length: the body ends when the server closes (HTTP/1.0 style)
        b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n" + TWIML,
        # an interim 100 Continue before the answer
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
        % len(TWIML) + TWIML,
    ],
    ids=["chunked", "until-close", "100-continue"],
)
async def test_every_body_framing(reply: bytes) -> None:
    server = RawServer(reply, close_after=reply.startswith(b"HTTP/1.0"))
    url = await server.start()
    async with app_client() as c:
        res = await c.fetch(url, "POST", {"a": "b"})
    server.close()
    assert res.ok and res.body == TWIML and res.kind == "twiml"


async def test_a_server_that_never_answers_times_out_and_frees_its_turn() -> None:
    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        w.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    transport = AppTransport()
    shared = shared_client(transport, read_timeout=0.2)
    try:
        res = await app_client(client=shared).fetch(f"http://127.0.0.1:{port}/", "POST", {})
        assert res.error == 11205
        assert transport.in_flight() == 0 and transport.idle_connections() == 0  # closed, not kept
    finally:
        await shared.aclose()
        srv.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_https_with_a_trusted_certificate_and_refused_when_untrusted(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = RawServer()
    url = await server.start(server_ctx)
    trusting = ssl.create_default_context(cafile=str(cert))
    shared = shared_client(verify=trusting)
    try:
        for _ in range(3):
            res = await app_client(client=shared).fetch(url, "POST", {"CallSid": "CA1"})
            assert res.ok and res.body == TWIML
        async with app_client() as c:  # the default: the public CA bundle, which never signed it
            refused = await c.fetch(url, "POST", {})
    finally:
        await shared.aclose()
        server.close()
    assert server.connections >= 1 and server.requests == 3  # kept alive over TLS too
    assert refused.error == 11205 and not refused.ok
