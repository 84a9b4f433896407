"""A scriptable app web server for tests: a real Starlette app on uvicorn.

It records every request (method, URL, query, form, headers) and checks its
X-Twilio-Signature, so tests can assert exactly what ringback sent.  Used by the
TwiML and webhook tests and available to end-to-end tests of the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ringback.signing import validate_signature

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Seen:
    method: str
    url: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    signature_ok: bool

    @property
    def params(self) -> dict[str, str]:
        """What the app received, wherever it was carried."""
        return {**self.query, **self.form}


@dataclass
class AppServer:
    auth_token: str
    port: int = 0
    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.routes[path] = fn
            return fn

        return deco

    def twiml(self, path: str, body: str | Callable[[Request], str], content_type: str = "text/xml") -> None:
        """Serve a fixed (or request-dependent) document at `path`."""

        async def handler(request: Request) -> Response:
            text = body(request) if callable(body) else body
            return Response(text, media_type=content_type)

        self.routes[path] = handler

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    async def dispatch(self, request: Request) -> Response:
        form = dict(await request.form()) if request.method == "POST" else {}
        sig = request.headers.get("x-twilio-signature", "")
        url = str(request.url)
        self.seen.append(
            Seen(
                request.method,
                url,
                request.url.path,
                dict(request.query_params),
                {k: str(v) for k, v in form.items()},
                dict(request.headers),
                validate_signature(self.auth_token, url, form if request.method == "POST" else None, sig),
            )
        )
        handler = self.routes.get(request.url.path)
        if handler is None:
            return Response("not found", status_code=404)
        return await handler(request)


def free_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it small responses wait on delayed ACKs.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve_app(auth_token: str) -> AsyncIterator[AppServer]:
    state = AppServer(auth_token)
    app = Starlette(routes=[Route("/{path:path}", state.dispatch, methods=["GET", "POST"])])
    sock = free_socket()
    state.port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.005)
    try:
        yield state
    finally:
        server.should_exit = True
        await task
        sock.close()
