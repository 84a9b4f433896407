"""How a dial attempt ends, mapped to the 2008 vocabulary (DESIGN.md, "The life of a call").

One table, so every path (REST first request, final REST Status, <Dial> action) agrees.
"""

from __future__ import annotations

from dataclasses import dataclass

# REST Status integers (reference 2.2).
NOT_DIALED, IN_PROGRESS, COMPLETE, BUSY, APP_ERROR, NO_ANSWER = 0, 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Outcome:
    dial_status: str  # DialStatus of the REST first request: busy | no-answer | fail
    call_status: str  # CallStatus string sent to the app
    rest_status: int  # final REST Status
    dial_verb_status: str  # what a <Dial> action reports: busy | no-answer | failed


BUSY_CODES = frozenset({486, 600, 603})
NO_ANSWER_CODES = frozenset({408, 480, 487})

_BUSY = Outcome("busy", "busy", BUSY, "busy")
_NO_ANSWER = Outcome("no-answer", "no-answer", NO_ANSWER, "no-answer")
_FAIL = Outcome("fail", "failed", APP_ERROR, "failed")


def failure_outcome(sip_code: int | None) -> Outcome:
    """The outcome of an INVITE that ended without a 2xx.

    `sip_code` None means a transport error or no response at all.
    """
    if sip_code in BUSY_CODES:
        return _BUSY
    if sip_code in NO_ANSWER_CODES:
        return _NO_ANSWER
    return _FAIL


def answered_dial_status(if_machine: str | None, verdict: str | None) -> str:
    """DialStatus for an answered call, given IfMachine and the detector's verdict.

    An undecided analysis counts as a person: hanging up on a person costs more than a poor voicemail.
    """
    if not if_machine:
        return "answered"
    if verdict == "machine":
        return "hangup-machine" if if_machine.lower() == "hangup" else "answered-machine"
    return "answered-human"
