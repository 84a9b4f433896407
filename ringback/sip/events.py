"""Events of the SIP endpoint core and of the asyncio UserAgent's per-call queues.

`call_id` is filled in by the core for routing; it is excluded from equality so tests and callers can
compare against `Ringing(180, None)` and the like.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ringing:
    """A 1xx (other than 100) on an outgoing INVITE; sdp is early media, if any."""

    code: int
    sdp: bytes | None = None
    call_id: str = field(default="", compare=False, kw_only=True)


Provisional = Ringing


@dataclass(frozen=True)
class Answered:
    sdp: bytes
    call_id: str = field(default="", compare=False, kw_only=True)


@dataclass(frozen=True)
class Failed:
    """The outgoing INVITE ended without a call: the final code (408 on timeout, 487 once cancelled)."""

    code: int
    reason: str = ""
    call_id: str = field(default="", compare=False, kw_only=True)


@dataclass(frozen=True)
class Hangup:
    by_remote: bool
    call_id: str = field(default="", compare=False, kw_only=True)


@dataclass(frozen=True)
class Dtmf:
    digit: str
    duration_ms: int | None = None
    call_id: str = field(default="", compare=False, kw_only=True)


InfoDtmf = Dtmf


@dataclass(frozen=True)
class Cancelled:
    """The caller CANCELled an incoming INVITE before it was answered (487 sent)."""

    call_id: str = field(default="", compare=False, kw_only=True)


@dataclass(frozen=True)
class MediaChanged:
    """The peer changed the session in a re-INVITE, UPDATE or ACK (hold, unhold, a new RTP address).

    `direction` is the audio direction as the peer's SDP states it ("sendonly" = the peer holds us);
    we have already answered with the mirror direction.  The media layer re-reads `sdp`.
    """

    sdp: bytes
    direction: str = "sendrecv"
    call_id: str = field(default="", compare=False, kw_only=True)


@dataclass(frozen=True)
class Registered:
    """The registrar accepted (or refreshed) a registration for `expires` seconds."""

    reg_id: str
    expires: int


@dataclass(frozen=True)
class RegistrationFailed:
    """A REGISTER failed (code 408 on no answer); the core retries by itself after a back-off."""

    reg_id: str
    code: int
    reason: str = ""


@dataclass(frozen=True)
class Unregistered:
    """The registration was removed (expires=0 accepted, or given up on when closing)."""

    reg_id: str


@dataclass(frozen=True)
class IncomingInvite:
    """A new dialog-creating INVITE (core only; the UserAgent turns it into an IncomingCall)."""

    call_id: str
    request: Any  # ringback.sip.message.Request
    addr: tuple[str, int]
    transport: str = "udp"


@dataclass(frozen=True)
class Terminated:
    """The core forgot the call (core only; the UserAgent drops its per-call object)."""

    call_id: str


CallEvent = Ringing | Answered | Failed | Hangup | Dtmf | Cancelled | MediaChanged
RegistrationEvent = Registered | RegistrationFailed | Unregistered
Event = CallEvent | IncomingInvite | Terminated | RegistrationEvent
