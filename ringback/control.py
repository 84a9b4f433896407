"""The API process telling the engine process what changed, when they run apart
(`ringback serve --engine-process`).

Hooks travel as UDP datagrams on loopback, one per change, each carrying a shared secret: cheap
and never blocking the API. A lost datagram costs nothing but latency: the dialer also polls the
database every second. The sandbox's "place a call" request needs an answer, so it goes over HTTP
to the engine's control port (the same number, TCP), with the same secret.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
from typing import Any

from ringback.api.context import ApiHooks

log = logging.getLogger("ringback.control")

SECRET_HEADER = "X-Ringback-Control"


class ControlSender(ApiHooks):
    """ApiHooks that forward every hook to the engine process."""

    def __init__(self, host: str, port: int, secret: str) -> None:
        self.addr = (host, port)
        self.secret = secret
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def _send(self, *parts: str) -> None:
        try:
            self.sock.sendto("\n".join((self.secret, *parts)).encode(), self.addr)
        except OSError as exc:  # the engine polls the database anyway
            log.warning("control datagram not sent: %s", exc)

    def on_call_created(self, call_sid: str) -> None:
        self._send("created", call_sid)

    def on_call_redirect(self, call_sid: str) -> None:
        self._send("redirect", call_sid)

    def on_participant_update(self, conference_sid: str, call_sid: str, action: str) -> None:
        self._send("participant", conference_sid, call_sid, action)

    def on_validation_requested(self, validation_sid: str) -> None:
        self._send("validation", validation_sid)

    def close(self) -> None:
        self.sock.close()


class ControlReceiver(asyncio.DatagramProtocol):
    """In the engine process: hands each datagram to the engine's own hooks."""

    def __init__(self, hooks: ApiHooks, secret: str) -> None:
        self.hooks = hooks
        self.secret = secret.encode()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        secret, _, rest = data.partition(b"\n")
        if not hmac.compare_digest(secret, self.secret):
            return
        parts = rest.decode("utf-8", "replace").split("\n")
        kind, args = parts[0], parts[1:]
        try:
            if kind == "created" and len(args) == 1:
                self.hooks.on_call_created(args[0])
            elif kind == "redirect" and len(args) == 1:
                self.hooks.on_call_redirect(args[0])
            elif kind == "participant" and len(args) == 3:
                self.hooks.on_participant_update(args[0], args[1], args[2])
            elif kind == "validation" and len(args) == 1:
                self.hooks.on_validation_requested(args[0])
        except Exception:
            log.exception("control message %s failed", kind)


def secret_ok(headers: Any, secret: str) -> bool:
    return hmac.compare_digest(str(headers.get(SECRET_HEADER, "")), secret)


def free_udp_tcp_port() -> int:
    """A loopback port free for both UDP and TCP (the engine's control port uses both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free control port")
