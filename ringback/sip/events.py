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


CallEvent = Ringing | Answered | Failed | Hangup | Dtmf | Cancelled
Event = CallEvent | IncomingInvite | Terminated
