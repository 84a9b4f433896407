"""The outbound SIP trunk: `sip:[user:password@]host[:port][;transport=udp|tcp]` (DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote


class BadTrunk(ValueError):
    pass


@dataclass(frozen=True)
class Trunk:
    host: str
    port: int = 5060
    transport: str = "udp"
    user: str | None = None
    password: str | None = None
    # Send numbers to the trunk as E.164 with the leading '+' (most carriers) or without.
    plus: bool = True

    @classmethod
    def parse(cls, uri: str) -> Trunk:
        if not uri.startswith("sip:"):
            raise BadTrunk(f"trunk must be a sip: URI, got {uri!r}")
        rest = uri[4:]
        rest, *params = rest.split(";")
        opts = dict(p.split("=", 1) if "=" in p else (p, "") for p in params)
        user = password = None
        if "@" in rest:
            cred, rest = rest.rsplit("@", 1)
            user, _, pw = cred.partition(":")
            user, password = unquote(user), (unquote(pw) if pw else None)
        host, port = rest, 5060
        if rest.startswith("["):
            host, _, p = rest[1:].partition("]")
            port = int(p[1:]) if p.startswith(":") else 5060
        elif ":" in rest:
            host, p = rest.rsplit(":", 1)
            port = int(p)
        transport = opts.get("transport", "udp").lower()
        if transport not in ("udp", "tcp") or not host:
            raise BadTrunk(f"bad trunk {uri!r}")
        plus = opts.get("e164", "plus") != "noplus"
        return cls(host=host, port=port, transport=transport, user=user, password=password, plus=plus)

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.user, self.password or "") if self.user else None

    def target(self, e164: str) -> str:
        """Request-URI for a number given in E.164 (with '+')."""
        user = e164 if self.plus else e164.lstrip("+")
        host = f"[{self.host}]" if ":" in self.host else self.host
        uri = f"sip:{user}@{host}:{self.port}"
        return uri + ";transport=tcp" if self.transport == "tcp" else uri
