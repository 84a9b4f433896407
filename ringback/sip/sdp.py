"""SDP offer/answer for one G.711 audio stream (RFC 4566, RFC 3264) plus telephone-event (RFC 4733)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

CODECS = {"PCMU": 0, "PCMA": 8}  # our preference order
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class SdpError(ValueError):
    """Unparseable SDP."""


class NoCommonCodec(SdpError):  # noqa: N818 - the name is part of the interface
    """The offer has no codec we speak: the UA answers 488."""


@dataclass(frozen=True)
class MediaParams:
    remote_host: str
    remote_port: int
    payload_type: int
    telephone_event_pt: int | None
    ptime: int = 20
    direction: str = "sendrecv"  # as seen from the peer's SDP


@dataclass
class _Media:
    port: int
    proto: str
    fmts: list[int]
    conn: str | None = None
    rtpmap: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"
    ptime: int = 20


@dataclass
class _Session:
    conn: str | None
    media: list[tuple[str, _Media]]


def _parse(sdp: bytes) -> _Session:
    try:
        text = sdp.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("SDP is not UTF-8") from exc
    conn: str | None = None
    media: list[tuple[str, _Media]] = []
    session_dir = "sendrecv"
    cur: _Media | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "c":
            parts = value.split()
            if len(parts) < 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
                raise SdpError(f"bad c= line {value!r}")
            addr = parts[2].split("/")[0]
            if cur is None:
                conn = addr
            else:
                cur.conn = addr
        elif kind == "m":
            parts = value.split()
            if len(parts) < 4:
                raise SdpError("bad m= line")
            try:
                port = int(parts[1].split("/")[0])
                fmts = [int(f) for f in parts[3:]] if parts[2].startswith("RTP/") else []
            except ValueError as exc:
                raise SdpError("bad m= line") from exc
            cur = _Media(port, parts[2], fmts, direction=session_dir)
            media.append((parts[0], cur))
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in DIRECTIONS:
                if cur is None:
                    session_dir = name
                else:
                    cur.direction = name
            elif cur is not None and name == "rtpmap":
                pt_s, _, enc = arg.partition(" ")
                if pt_s.strip().isdigit():
                    cur.rtpmap[int(pt_s)] = enc.strip()
            elif cur is not None and name == "ptime" and arg.strip().isdigit():
                cur.ptime = int(arg.strip())
    return _Session(conn, media)


def _codec_name(m: _Media, pt: int) -> str:
    enc = m.rtpmap.get(pt)
    if enc is None:
        return {0: "PCMU/8000", 8: "PCMA/8000"}.get(pt, "")
    return enc.upper()


def _audio(sess: _Session) -> _Media:
    for kind, m in sess.media:
        if kind == "audio" and m.port != 0 and m.proto.startswith("RTP/"):
            return m
    raise NoCommonCodec("no active audio stream")


def _telephone_event(m: _Media) -> int | None:
    for pt in m.fmts:
        if _codec_name(m, pt).startswith("TELEPHONE-EVENT/8000"):
            return pt
    return None


def _params(sess: _Session, m: _Media, pt: int) -> MediaParams:
    host = m.conn or sess.conn
    if not host:
        raise SdpError("no connection address")
    return MediaParams(host, m.port, pt, _telephone_event(m), m.ptime, m.direction)


def _ip_kind(host: str) -> str:
    return "IP6" if ":" in host else "IP4"


def _render(host: str, port: int, pts: list[int], te: int | None, session_id: int, direction: str) -> bytes:
    names = {0: "PCMU/8000", 8: "PCMA/8000"}
    fmts = pts + ([te] if te is not None else [])
    lines = [
        "v=0",
        f"o=ringback {session_id} {session_id} IN {_ip_kind(host)} {host}",
        "s=ringback",
        f"c=IN {_ip_kind(host)} {host}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, fmts))}",
    ]
    lines += [f"a=rtpmap:{pt} {names[pt]}" for pt in pts]
    if te is not None:
        lines += [f"a=rtpmap:{te} telephone-event/8000", f"a=fmtp:{te} 0-16"]
    lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _sid(session_id: int | None) -> int:
    return session_id if session_id is not None else secrets.randbelow(2**31)


def make_offer(host: str, port: int, *, session_id: int | None = None, telephone_event_pt: int = 101,
               direction: str = "sendrecv") -> bytes:
    return _render(host, port, list(CODECS.values()), telephone_event_pt, _sid(session_id), direction)


def make_answer(offer: bytes, host: str, port: int, *, session_id: int | None = None) -> tuple[bytes, MediaParams]:
    """Pick the offerer's first G.711 codec; echo its telephone-event payload type."""
    sess = _parse(offer)
    m = _audio(sess)
    chosen = next((pt for pt in m.fmts if _codec_name(m, pt) in ("PCMU/8000", "PCMA/8000")), None)
    if chosen is None:
        raise NoCommonCodec("no PCMU or PCMA in the offer")
    if chosen not in (0, 8):
        raise NoCommonCodec("G.711 on a dynamic payload type is not supported")
    params = _params(sess, m, chosen)
    body = _render(host, port, [chosen], params.telephone_event_pt, _sid(session_id), _REVERSE[m.direction])
    return body, params


def parse_answer(answer: bytes) -> MediaParams:
    sess = _parse(answer)
    m = _audio(sess)
    chosen = next((pt for pt in m.fmts if pt in (0, 8) and _codec_name(m, pt) in ("PCMU/8000", "PCMA/8000")),
                  None)
    if chosen is None:
        raise NoCommonCodec("the answer has no PCMU or PCMA")
    return _params(sess, m, chosen)


def mirror(direction: str) -> str:
    """The answerer's direction for an offered one (RFC 3264 6.1): sendonly <-> recvonly."""
    return _REVERSE.get(direction, "sendrecv")


def offer_direction(sdp: bytes) -> str:
    """The audio direction an SDP states; `c=0.0.0.0` (RFC 2543 hold) counts as sendonly.

    Raises SdpError / NoCommonCodec when there is no usable audio stream (the UA answers 488).
    """
    sess = _parse(sdp)
    m = _audio(sess)
    host = m.conn or sess.conn
    if host in ("0.0.0.0", "::") and m.direction == "sendrecv":
        return "sendonly"
    return m.direction


def _origin_version(lines: list[str]) -> int | None:
    for line in lines:
        if line.startswith("o="):
            parts = line[2:].split()
            if len(parts) >= 3 and parts[2].isdigit():
                return int(parts[2])
    return None


def with_direction(sdp: bytes, direction: str, *, previous: bytes | None = None) -> bytes:
    """`sdp` with its direction attributes set to `direction`.

    When `previous` (the SDP we last sent in this session) is given, the result keeps its o= version if
    nothing else changed and takes version+1 otherwise: RFC 3264 8 requires a new version for a changed
    description and the same one for an unchanged one (peers use it to skip media re-setup).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"bad direction {direction!r}")
    lines = sdp.decode("utf-8").splitlines()
    out: list[str] = []
    seen = False
    for line in lines:
        if line[2:] in DIRECTIONS and line.startswith("a="):
            out.append(f"a={direction}")
            seen = True
        else:
            out.append(line)
    if not seen:
        out.append(f"a={direction}")
    if previous is not None:
        prev = previous.decode("utf-8", "replace").splitlines()
        if [x for x in prev if not x.startswith("o=")] == [x for x in out if not x.startswith("o=")]:
            return previous
        version = _origin_version(prev)
        if version is not None:
            for i, line in enumerate(out):
                if line.startswith("o="):
                    parts = line[2:].split()
                    if len(parts) >= 3:
                        parts[2] = str(version + 1)
                        out[i] = "o=" + " ".join(parts)
                    break
    return ("\r\n".join(out) + "\r\n").encode()
