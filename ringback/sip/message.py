"""SIP message parsing and serialising (RFC 3261 section 7, 20) and TCP stream framing.

Any malformed input raises ParseError and nothing else: the transport counts and drops it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from ringback.sip.errors import ParseError
from ringback.sip.uri import (
    NameAddr,
    Params,
    format_params,
    parse_hostport,
    parse_name_addr,
    parse_params,
    parse_uri,
)
from ringback.sip.uri import split_quoted as _split_quoted

__all__ = [
    "ParseError", "Request", "Response", "Message", "Via", "parse_message", "StreamFramer",
    "new_branch", "new_tag", "BRANCH_COOKIE", "canonical_name", "MAX_MESSAGE",
]

BRANCH_COOKIE = "z9hG4bK"
MAX_MESSAGE = 65535  # a UDP datagram's worth; also the TCP framing limit

COMPACT = {
    "v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
    "c": "Content-Type", "k": "Supported", "s": "Subject", "e": "Content-Encoding", "o": "Event",
    "r": "Refer-To", "u": "Allow-Events", "x": "Session-Expires", "b": "Referred-By",
}
_CANON = {n.lower(): n for n in (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Content-Type", "Max-Forwards",
    "Route", "Record-Route", "Supported", "Require", "Allow", "User-Agent", "Server", "Subject",
    "WWW-Authenticate", "Authorization", "Proxy-Authenticate", "Proxy-Authorization", "Expires",
    "Content-Encoding", "Event", "Refer-To", "Allow-Events", "Session-Expires", "RSeq", "RAck",
    "Accept", "Unsupported", "Retry-After", "Reason", "Min-SE", "Referred-By",
)}
# headers whose comma-separated values are separate entries (RFC 3261 7.3.1);
# the auth headers are excluded because their values contain commas
MULTI = {"via", "route", "record-route", "contact", "allow", "supported", "require", "accept",
         "unsupported", "allow-events", "content-encoding"}

_WS_RE = re.compile(r"\s")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def canonical_name(name: str) -> str:
    low = name.lower()
    if low in COMPACT:
        return COMPACT[low]
    return _CANON.get(low, name)


_KEYS: dict[str, str] = {}


def _lookup_key(name: str) -> str:
    """The index key of a header name as code spells it ("Call-ID", "call-id", "i")."""
    key = _KEYS.get(name)
    if key is None:
        key = canonical_name(name).lower()
        if len(_KEYS) < 4096:  # names come from our code, but never let the memo grow unbounded
            _KEYS[name] = key
    return key


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: Params = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        hp = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"SIP/2.0/{self.transport} {hp}{format_params(self.params)}"

    @classmethod
    def parse(cls, value: str) -> Via:
        proto, _, rest = value.strip().partition(" ")
        parts = [p.strip() for p in proto.split("/")]
        if len(parts) != 3 or parts[0].upper() != "SIP" or not parts[2]:
            # tolerate "SIP / 2.0 / UDP" with spaces (RFC 4475 wsinv)
            joined = value.replace(" ", "").replace("\t", "")
            if not joined.upper().startswith("SIP/2.0/"):
                raise ParseError("bad Via")
            segs = value.split("/", 2)
            tail = segs[2].strip() if len(segs) == 3 else ""
            transport, _, rest = tail.partition(" ")
            parts = ["SIP", "2.0", transport]
        sent_by, _, params = rest.strip().partition(";")
        host, port = parse_hostport(sent_by)
        return cls(parts[2].upper(), host, port, parse_params(params))


@dataclass
class Message:
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # parsed From/To/Via, computed once; every header mutation through the methods below clears it
    _cache: dict[str, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        # Replacing the header list outdates the parsed views and the index.
        if name == "headers" and "_cache" in self.__dict__:
            self._cache.clear()
        object.__setattr__(self, name, value)

    # --- header access -------------------------------------------------
    def _index(self) -> dict[str, list[str]]:
        """Header values by lower-case name, built once per header list: a message is read
        a dozen times between parse and handling, and scanning the list each time with
        lower() on every name was most of the parse cost."""
        idx: dict[str, list[str]] | None = self._cache.get("idx")  # type: ignore[assignment]
        if idx is None:
            idx = {}
            for n, v in self.headers:
                low = n.lower()
                vals = idx.get(low)
                if vals is None:
                    idx[low] = [v]
                else:
                    vals.append(v)
            self._cache["idx"] = idx
        return idx

    def get(self, name: str, default: str | None = None) -> str | None:
        vals = self._index().get(_lookup_key(name))
        return vals[0] if vals else default

    def get_all(self, name: str) -> list[str]:
        """Every value of a header; comma lists are split for the multi-valued headers."""
        low = _lookup_key(name)
        vals = self._index().get(low)
        if not vals:
            return []
        if low not in MULTI:
            return list(vals)
        out: list[str] = []
        for v in vals:
            if "," in v:
                out.extend(p.strip() for p in _split_quoted(v, ",") if p.strip())
            elif v:
                out.append(v.strip())
        return out

    def set(self, name: str, value: str) -> None:
        self._cache.clear()
        name = canonical_name(name)
        self.remove(name)
        self.headers.append((name, value))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        self._cache.clear()
        name = canonical_name(name)
        if first:
            self.headers.insert(0, (name, value))
        else:
            self.headers.append((name, value))

    def remove(self, name: str) -> None:
        self._cache.clear()
        low = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != low]

    # --- typed views ----------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.get("CSeq") or "")

    @property
    def from_(self) -> NameAddr:
        v = self._cache.get("from")
        if v is None:
            v = self._cache["from"] = parse_name_addr(self.get("From") or "")
        return v  # type: ignore[return-value]

    @property
    def to(self) -> NameAddr:
        v = self._cache.get("to")
        if v is None:
            v = self._cache["to"] = parse_name_addr(self.get("To") or "")
        return v  # type: ignore[return-value]

    @property
    def vias(self) -> list[Via]:
        """Parsed Via values (copies: edit them and write them back with `set`)."""
        v = self._cache.get("vias")
        if v is None:
            v = self._cache["vias"] = [Via.parse(x) for x in self.get_all("Via")]
        return [Via(x.transport, x.host, x.port, dict(x.params)) for x in v]  # type: ignore[attr-defined]

    @property
    def top_via(self) -> Via:
        v = self._cache.get("vias")
        if v is None:
            v = self._cache["vias"] = [Via.parse(x) for x in self.get_all("Via")]
        if not v:
            raise ParseError("no Via")
        top = v[0]  # type: ignore[index]
        return Via(top.transport, top.host, top.port, dict(top.params))

    def _serialise(self, start: str) -> bytes:
        lines = [start]
        for n, v in self.headers:
            if n != "Content-Length":
                lines.append(f"{n}: {v}")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body


@dataclass
class Request(Message):
    method: str = ""
    uri: str = ""

    def __init__(self, method: str, uri: str, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"") -> None:
        super().__init__(list(headers or []), body)
        self.method = method
        self.uri = uri

    def __bytes__(self) -> bytes:
        return self._serialise(f"{self.method} {self.uri} SIP/2.0")


@dataclass
class Response(Message):
    status: int = 0
    reason: str = ""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"") -> None:
        super().__init__(list(headers or []), body)
        self.status = status
        self.reason = reason

    def __bytes__(self) -> bytes:
        return self._serialise(f"SIP/2.0 {self.status} {self.reason}")


def parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 10:
        raise ParseError("bad CSeq")
    n = int(parts[0])
    if n >= 2**31:
        raise ParseError("CSeq out of range")
    if not _is_token(parts[1]):
        raise ParseError("bad CSeq method")
    return n, parts[1]


def _is_token(s: str) -> bool:
    return _TOKEN_RE.fullmatch(s) is not None


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    idx = data.find(b"\r\n\r\n")
    if idx >= 0:
        return data[:idx], data[idx + 4 :]
    idx = data.find(b"\n\n")  # bare-LF senders exist; be liberal in what we accept
    if idx >= 0:
        return data[:idx], data[idx + 2 :]
    # no blank line: headers only, no body (allowed on UDP)
    return data.rstrip(b"\r\n"), b""


def parse_message(data: bytes, *, stream: bool = False) -> Request | Response:
    """Parse one SIP message. `stream` = the framer already cut the body to Content-Length."""
    try:
        return _parse(data, stream)
    except ParseError:
        raise
    except (ValueError, IndexError, UnicodeError, OverflowError) as exc:  # belt and braces
        raise ParseError(str(exc)) from None


def _parse(data: bytes, stream: bool) -> Request | Response:
    if len(data) > MAX_MESSAGE:
        raise ParseError("message too large")
    data = data.lstrip(b"\r\n")  # RFC 3261 7.5: ignore leading CRLFs
    if not data:
        raise ParseError("empty message")
    head_b, body = _split_head(data)
    if b"\x00" in head_b and not _nul_only_quoted(head_b):
        # an escaped NUL inside a quoted string is legal (RFC 4475 intmeth); anywhere else it is not
        raise ParseError("NUL in headers")
    head = head_b.decode("utf-8", "surrogateescape")
    lines = head.replace("\r\n", "\n").split("\n")
    start = lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not headers:
                raise ParseError("continuation before first header")
            n, v = headers[-1]
            headers[-1] = (n, (v + " " + line.strip()).strip())  # header folding (7.3.1)
            continue
        if not line.strip():
            raise ParseError("blank line inside headers")
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _is_token(name):
            raise ParseError(f"bad header line {line[:40]!r}")
        headers.append((canonical_name(name), value.strip()))

    msg: Request | Response
    if start.startswith("SIP/"):
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0":
            raise ParseError("bad status line")
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
            raise ParseError("bad status code")
        msg = Response(int(code), parts[2] if len(parts) > 2 else "", headers)
    else:
        parts = start.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0":
            raise ParseError("bad request line")
        if not _is_token(parts[0]) or not parts[1] or ":" not in parts[1]:
            raise ParseError("bad method or request-URI")
        parse_uri(parts[1])  # `<sip:...>` or junk as Request-URI is a 400 (RFC 4475 ltgtruri)
        msg = Request(parts[0], parts[1], headers)

    cl_values = msg.get_all("Content-Length")
    if len(set(cl_values)) > 1:
        raise ParseError("conflicting Content-Length")
    if cl_values:
        cl = cl_values[0]
        if not cl.isdigit() or len(cl) > 9:
            raise ParseError("bad Content-Length")
        n = int(cl)
        if n > len(body):
            raise ParseError("body shorter than Content-Length")
        body = body[:n]  # extra bytes after the body are discarded (UDP, RFC 3261 18.3)
    elif stream:
        raise ParseError("no Content-Length on a stream")
    msg.body = body
    _validate(msg)
    return msg


def _validate(msg: Request | Response) -> None:
    for required in ("Call-ID", "CSeq", "From", "To", "Via"):
        if msg.get(required) is None:
            raise ParseError(f"missing {required}")
    if not msg.call_id or _WS_RE.search(msg.call_id):
        raise ParseError("bad Call-ID")
    _, method = msg.cseq
    if isinstance(msg, Request) and method != msg.method:
        raise ParseError("CSeq method does not match request")
    if len(msg.get_all("From")) != 1 or len(msg.get_all("To")) != 1:
        raise ParseError("duplicate From/To")
    msg.from_  # noqa: B018 - parse now so later code never sees a bad From/To/Via
    msg.to  # noqa: B018
    msg.vias  # noqa: B018
    mf = msg.get("Max-Forwards")
    if mf is not None and (not mf.isdigit() or len(mf) > 9):
        raise ParseError("bad Max-Forwards")
    for contact in msg.get_all("Contact"):
        if contact != "*":
            parse_name_addr(contact)  # e.g. an addr-spec with ?headers outside <> (RFC 4475 regbadct)


def _nul_only_quoted(head: bytes) -> bool:
    """True when every NUL byte sits inside a double-quoted string (escapes honoured)."""
    quoted = False
    i = 0
    n = len(head)
    while i < n:
        c = head[i]
        if quoted and c == 0x5C:  # backslash: the next byte is escaped, whatever it is
            i += 2
            continue
        if c == 0x22:
            quoted = not quoted
        elif c == 0 and not quoted:
            return False
        elif c in (0x0D, 0x0A) and quoted:
            quoted = False  # a quote never spans lines once folding is undone; be strict
        i += 1
    return True


class StreamFramer:
    """Cuts a TCP byte stream into SIP messages by Content-Length (RFC 3261 18.3)."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._max = max_message

    def feed(self, data: bytes) -> list[bytes]:
        """Returns complete messages; raises ParseError when the stream is beyond repair."""
        self._buf += data
        out: list[bytes] = []
        while True:
            # keep-alive CRLFs between messages (RFC 5626 4.4.1)
            while self._buf[:2] == b"\r\n":
                del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > self._max:
                    raise ParseError("header section too long")
                return out
            head = bytes(self._buf[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() in (b"content-length", b"l"):
                    v = value.strip()
                    if not v.isdigit() or len(v) > 9:
                        raise ParseError("bad Content-Length on stream")
                    length = int(v)
            total = end + 4 + length
            if total > self._max:
                raise ParseError("message too large")
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]
