"""HTTP digest authentication for SIP (RFC 2617 / RFC 3261 22): client answers and a server verifier."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from ringback.sip.errors import ParseError
from ringback.sip.uri import split_quoted


def _md5(s: str) -> str:
    return hashlib.md5(s.encode("utf-8"), usedforsecurity=False).hexdigest()


def parse_challenge(value: str) -> dict[str, str]:
    """'Digest realm="x", nonce="y", qop="auth"' -> {'realm': 'x', ...} (keys lower-case)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ParseError("not a Digest challenge")
    out: dict[str, str] = {}
    for part in split_quoted(rest, ","):
        name, eq, v = part.strip().partition("=")
        if not eq:
            continue
        v = v.strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[name.strip().lower()] = v
    return out


def digest_response(*, username: str, realm: str, password: str, method: str, uri: str, nonce: str,
                    qop: str | None = None, nc: str = "00000001", cnonce: str = "",
                    algorithm: str = "MD5") -> str:
    ha1 = _md5(f"{username}:{realm}:{password}")
    if algorithm.upper() == "MD5-SESS":
        ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def build_authorization(challenge: dict[str, str], *, username: str, password: str, method: str, uri: str,
                        nc: int = 1, cnonce: str | None = None) -> str:
    """The Authorization / Proxy-Authorization value answering `challenge`."""
    realm = challenge.get("realm", "")
    nonce = challenge.get("nonce", "")
    algorithm = challenge.get("algorithm", "MD5")
    if algorithm.upper() not in ("MD5", "MD5-SESS"):
        raise ParseError(f"unsupported digest algorithm {algorithm}")
    qops = [q.strip().lower() for q in challenge.get("qop", "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else None
    if qops and qop is None:
        raise ParseError("only qop=auth is supported")
    cnonce = cnonce or secrets.token_hex(8)
    ncs = f"{nc:08x}"
    resp = digest_response(username=username, realm=realm, password=password, method=method, uri=uri,
                           nonce=nonce, qop=qop, nc=ncs, cnonce=cnonce, algorithm=algorithm)
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
             f'response="{resp}"', f"algorithm={algorithm}"]
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    if qop:
        parts += [f"qop={qop}", f"nc={ncs}", f'cnonce="{cnonce}"']
    return "Digest " + ", ".join(parts)


@dataclass
class DigestVerifier:
    """Stateless server side: the nonce carries its own timestamp and MAC, so no table can grow."""

    realm: str
    credentials: dict[str, str]
    secret: bytes = b""
    max_age: float = 300.0

    def __post_init__(self) -> None:
        if not self.secret:
            self.secret = secrets.token_bytes(16)

    def _mac(self, ts: str) -> str:
        return hmac.new(self.secret, ts.encode(), hashlib.sha256).hexdigest()[:24]

    def make_nonce(self, now: float | None = None) -> str:
        ts = f"{int(now if now is not None else time.time()):x}"
        return f"{ts}{self._mac(ts)}"

    def challenge(self, now: float | None = None) -> str:
        return (f'Digest realm="{self.realm}", nonce="{self.make_nonce(now)}", '
                f'algorithm=MD5, qop="auth"')

    def verify(self, authorization: str | None, method: str, now: float | None = None) -> str | None:
        """Returns the authenticated user name, or None (then challenge again)."""
        if not authorization:
            return None
        try:
            p = parse_challenge(authorization)
        except ParseError:
            return None
        user, nonce = p.get("username", ""), p.get("nonce", "")
        password = self.credentials.get(user)
        if password is None or p.get("realm") != self.realm or len(nonce) < 25:
            return None
        ts, mac = nonce[:-24], nonce[-24:]
        if not hmac.compare_digest(mac, self._mac(ts)):
            return None
        try:
            age = (now if now is not None else time.time()) - int(ts, 16)
        except ValueError:
            return None
        if age > self.max_age or age < -5:
            return None
        qop = p.get("qop")
        expected = digest_response(username=user, realm=self.realm, password=password, method=method,
                                   uri=p.get("uri", ""), nonce=nonce, qop=qop, nc=p.get("nc", ""),
                                   cnonce=p.get("cnonce", ""), algorithm=p.get("algorithm", "MD5"))
        return user if hmac.compare_digest(expected, p.get("response", "")) else None
