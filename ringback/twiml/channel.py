"""The media-level interface the TwiML interpreter drives on one call leg.

The engine implements `Channel` on a live SIP/RTP call (over the media
engine's call-leg API); tests implement it with a scripted fake.  The
interpreter knows nothing of SIP: everything it needs is here.

Audio is always int16 mono 8 kHz numpy arrays; frames handed to taps are 20 ms
(160 samples).  Times are seconds on the event loop's clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
Tap = Callable[[Pcm, float], None]

ERROR, WARNING = 0, 1
DialStatus = Literal["answered", "busy", "no-answer", "failed"]


@dataclass(frozen=True)
class Notification:
    """One Notification resource to persist (reference section 2.5)."""

    code: int
    message: str
    log: int = ERROR  # 0 error, 1 warning
    request_url: str = ""
    request_method: str = ""
    request_variables: str = ""  # form-encoded
    response_headers: str = ""  # "Name: value" lines
    response_body: str = ""


@dataclass(frozen=True)
class DialTarget:
    """One number to ring for <Dial>.

    `url`, when set, is an absolute URL of a whisper document the engine runs
    on the callee's leg after it answers and before the bridge (the caller
    keeps hearing ringing).  If that document hangs up, the target is treated
    as not answering.  The engine runs it with `run_whisper` from
    ringback.twiml.interpreter on a Channel for the callee leg whose
    `is_segment` is True.
    """

    number: str
    send_digits: str = ""  # 0-9 # * and w (wait 0.5 s)
    url: str | None = None
    method: str = "POST"


@dataclass(frozen=True)
class DialResult:
    status: DialStatus
    duration: float = 0.0  # seconds bridged
    segment_sid: str | None = None  # CallSegmentSid of the answered leg
    ended_by: Literal["caller", "callee", "star", "time-limit", "none"] = "none"


@dataclass(frozen=True)
class ConferenceOptions:
    name: str
    muted: bool = False
    beep: bool = True
    start_on_enter: bool = True
    end_on_exit: bool = False
    time_limit: float = 14400.0
    hangup_on_star: bool = False
    # What a participant hears while the conference has not started.  The
    # engine starts `wait()` as a task when the participant must wait and
    # cancels it when the conference starts; it plays the waitUrl (TwiML with
    # Play/Say/Redirect, or audio), silence for waitUrl="", or hold music.
    wait: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class ConferenceResult:
    status: Literal["completed", "failed"] = "completed"
    duration: float = 0.0
    ended_by: Literal["caller", "end-on-exit", "star", "time-limit", "none"] = "none"


@dataclass(frozen=True)
class RecordingInfo:
    sid: str
    url: str  # public RecordingUrl handed to the app (no extension)
    duration: float  # seconds


@runtime_checkable
class Channel(Protocol):
    """One answered call leg, as the interpreter sees it."""

    call_sid: str
    account_sid: str
    # The standard request parameters: CallSid, CallGuid, AccountSid,
    # AccountGuid, Caller, Called, CallStatus and Caller*/Called* geo fields.
    # The interpreter copies it per request and overrides CallStatus.
    params: dict[str, str]
    # Set by the engine when the far end hangs up (BYE) or the call is torn down.
    hung_up: asyncio.Event
    # True on a <Dial> leg (a Segment): Dial there is error 13201.
    is_segment: bool

    async def play(self, pcm: Pcm, interruptible: bool = False) -> str | None:
        """Play to the caller; return when done.  With `interruptible`, stop at
        the first DTMF key and return it (the key stays consumed).  Cancel-safe:
        cancelling stops the audio.  Returns promptly after a hangup."""
        ...

    async def next_digit(self, timeout: float) -> str | None:
        """The next received DTMF key (buffered ones first), or None on timeout
        or hangup."""
        ...

    def flush_digits(self) -> None:
        """Forget buffered DTMF keys."""
        ...

    def add_tap(self, fn: Tap) -> Callable[[], None]:
        """Call fn(frame, now) for every received 20 ms frame; returns a remover."""
        ...

    async def hangup(self) -> None:
        """Hang up this leg (BYE).  Idempotent."""
        ...

    async def dial(
        self,
        targets: list[DialTarget],
        *,
        caller_id: str,
        timeout: float,
        time_limit: float,
        hangup_on_star: bool,
    ) -> DialResult:
        """Ring every target at once, first to answer wins; run its whisper url,
        send its digits, bridge both legs; return when either side hangs up,
        time_limit expires or the caller presses * with hangup_on_star (which
        hangs up the callee only).  Returns early if the caller hangs up."""
        ...

    async def conference(self, options: ConferenceOptions) -> ConferenceResult:
        """Join the account's conference room `options.name` until this leg
        leaves (hangup, *, time limit) or the conference ends."""
        ...

    async def check_caller_id(self, number: str) -> bool:
        """Whether `number` may be used as <Dial callerId> (13214 otherwise): the
        call's own caller, one of the account's numbers or a validated caller ID."""
        ...

    async def notify(self, notification: Notification) -> None:
        """Persist a Notification for this call."""
        ...

    async def save_recording(self, pcm: Pcm) -> RecordingInfo:
        """Store a Recording (WAV and MP3) for this call."""
        ...

    async def transcribe(self, recording: RecordingInfo, pcm: Pcm, callback_url: str | None) -> None:
        """Start a transcription of the recording in the background; when done
        POST the standard parameters plus TranscriptionText, TranscriptionStatus,
        TranscriptionUrl and RecordingUrl to callback_url (if any)."""
        ...


@dataclass
class Outcome:
    """How an interpreter run ended."""

    status: Literal["completed", "hung_up", "hangup_verb", "app_error"]
    error: int | None = None
    # Every Notification raised (also sent through Channel.notify).
    notifications: list[Notification] = field(default_factory=list)

    @property
    def app_error(self) -> bool:
        """The call's final REST Status should be 4."""
        return self.status == "app_error"
