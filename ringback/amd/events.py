"""Events the detector hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AnsweredBy = Literal["human", "machine", "unknown"]
GreetingEndKind = Literal["beep", "silence", "timeout"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Human or machine (``unknown`` counts as a person). Times are seconds since answer."""

    answered_by: AnsweredBy
    decided_at: float
    cause: str


@dataclass(frozen=True, slots=True)
class GreetingEnd:
    """For a machine: its greeting is over, the app's audio may start now (``decided_at``).

    ``kind`` says how it was found; ``at`` is when the beep (or the greeting's speech) ended.
    """

    kind: GreetingEndKind
    at: float
    decided_at: float


AmdEvent = Verdict | GreetingEnd
