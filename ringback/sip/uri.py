"""SIP URIs, name-addr values and header parameters (RFC 3261 sections 19.1, 20, 25)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ringback.sip.errors import ParseError

Params = dict[str, str | None]
_WS = re.compile(r"\s")
_BAD_HOST = re.compile(r'[\s<>"]')


def split_quoted(s: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes and <...> (commas inside a URI are data)."""
    if '"' not in s and "<" not in s:
        return s.split(sep)  # the common case, without the character loop
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    angle = 0
    i = 0
    while i < len(s):
        ch = s[i]
        if quoted:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(s):
                buf.append(s[i + 1])
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            buf.append(ch)
        elif ch == "<":
            angle += 1
            buf.append(ch)
        elif ch == ">":
            angle = max(0, angle - 1)
            buf.append(ch)
        elif ch == sep and angle == 0:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    if quoted:
        raise ParseError("unterminated quoted string")
    parts.append("".join(buf))
    return parts


def parse_params(s: str) -> Params:
    """Parse ';a=b;c' (leading ';' optional) into an ordered dict; names are lower-cased."""
    out: Params = {}
    for part in split_quoted(s, ";"):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not name:
            raise ParseError("empty parameter name")
        out[name] = value.strip() if eq else None
    return out


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _split_hostport(s: str) -> tuple[str, int | None]:
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise ParseError("bad IPv6 reference")
        host, rest = s[: end + 1], s[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ParseError("bad host:port")
        port_s = rest[1:]
    else:
        host, colon, port_s = s.partition(":")
        if not colon:
            port_s = ""
    if not host or _BAD_HOST.search(host):
        raise ParseError("bad host")
    if not port_s:
        return host, None
    if not port_s.isdigit() or len(port_s) > 5 or int(port_s) > 65535:
        raise ParseError("bad port")
    return host, int(port_s)


def parse_hostport(s: str) -> tuple[str, int | None]:
    return _split_hostport(s.strip())


@dataclass
class SipUri:
    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = field(default_factory=dict)
    headers: str | None = None
    opaque: str | None = None  # the whole body of a non-sip URI (tel:, urn:, ...)

    @property
    def transport(self) -> str:
        return (self.params.get("transport") or "udp").lower()

    @property
    def addr(self) -> tuple[str, int]:
        host = self.host[1:-1] if self.host.startswith("[") else self.host
        return host, self.port or (5061 if self.scheme == "sips" else 5060)

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        s = f"{self.scheme}:"
        if self.user is not None:
            s += self.user
            if self.password is not None:
                s += f":{self.password}"
            s += "@"
        s += self.host
        if self.port is not None:
            s += f":{self.port}"
        s += format_params(self.params)
        if self.headers:
            s += f"?{self.headers}"
        return s


def parse_uri(s: str) -> SipUri:
    s = s.strip()
    scheme, colon, rest = s.partition(":")
    if not colon or not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        raise ParseError(f"bad URI {s[:40]!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        if not rest or _WS.search(rest):
            raise ParseError("bad URI")
        return SipUri(scheme=scheme, opaque=rest)
    user = password = None
    at = rest.find("@")
    if at >= 0:
        # the user part may hold '?', ';' and '/' (RFC 4475 intmeth, semiuri); neither it nor a header
        # value may hold a bare '@' (RFC 3261 25.1), so the first '@' ends the userinfo
        userinfo, rest = rest[:at], rest[at + 1 :]
    else:
        userinfo = None
    rest, qmark, headers = rest.partition("?")
    if userinfo is not None:
        user, pcolon, pw = userinfo.partition(":")
        password = pw if pcolon else None
        if _WS.search(userinfo):
            raise ParseError("bad userinfo")
    hostport, _, params = rest.partition(";")
    host, port = _split_hostport(hostport)
    return SipUri(scheme, user, password, host.lower(), port, parse_params(params), headers if qmark else None)


@dataclass
class NameAddr:
    uri: SipUri
    display: str | None = None
    params: Params = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        d = f"{self.display} " if self.display else ""
        return f"{d}<{self.uri}>{format_params(self.params)}"


# Parsed From/To/Contact values by text. A dialog's messages repeat the same few values (the
# INVITE, its provisional and final responses, the ACK), and each message is read several times;
# parsing one costs about 9 us, copying a parsed one about 2 us. Cleared when full (no LRU needed:
# the working set is the live dialogs' values).
_NAME_ADDRS: dict[str, NameAddr] = {}
_NAME_ADDRS_MAX = 4096


def parse_name_addr(s: str) -> NameAddr:
    """name-addr (`"Bob" <sip:b@h>;tag=1`) or addr-spec (`sip:b@h;tag=1`: params go to the header).

    Returns a new object each time: callers may change what they get."""
    hit = _NAME_ADDRS.get(s)
    if hit is not None:
        return _copy(hit)
    na = _parse_name_addr(s)
    if len(_NAME_ADDRS) >= _NAME_ADDRS_MAX:
        _NAME_ADDRS.clear()
    _NAME_ADDRS[s] = _copy(na)
    return na


def _copy(na: NameAddr) -> NameAddr:
    u = na.uri
    return NameAddr(SipUri(u.scheme, u.user, u.password, u.host, u.port, dict(u.params), u.headers, u.opaque),
                    na.display, dict(na.params))


def _parse_name_addr(s: str) -> NameAddr:
    s = s.strip()
    display: str | None = None
    if "<" in s:
        lt = s.index("<")
        if s.startswith('"'):
            end = 1
            while end < len(s):
                if s[end] == "\\":
                    end += 2
                    continue
                if s[end] == '"':
                    break
                end += 1
            if end >= len(s):
                raise ParseError("unterminated display name")
            display = s[: end + 1]
            lt = s.find("<", end)
            if lt < 0:
                raise ParseError("missing <")
            if s[end + 1 : lt].strip():
                raise ParseError("junk after display name")
        else:
            display = s[:lt].strip() or None
        gt = s.find(">", lt)
        if gt < 0:
            raise ParseError("missing >")
        uri = parse_uri(s[lt + 1 : gt])
        return NameAddr(uri, display, parse_params(s[gt + 1 :]))
    if s == "*":
        return NameAddr(SipUri(scheme="*", opaque=""))
    # addr-spec: any ';' parameters belong to the header, not the URI (RFC 3261 20.10)
    uri_s, _, params = s.partition(";")
    uri = parse_uri(uri_s)
    if uri.headers is not None:
        raise ParseError("addr-spec with headers must use <>")
    return NameAddr(uri, None, parse_params(params))


def user_of(value: str) -> str:
    """The user part of a From/To/Contact value, or '' (tel: URIs give their number)."""
    try:
        na = parse_name_addr(value)
    except ParseError:
        return ""
    if na.uri.opaque is not None:
        return na.uri.opaque.split(";", 1)[0]
    return na.uri.user or ""
