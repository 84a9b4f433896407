"""The sandbox numbering plan: what each virtual phone does when called (DESIGN.md).

Built-in block +1 500 555 01xx, by the last two digits:

  00-49  a person: rings, answers, says "Hello?", then listens
  50-69  a person who presses 1234# a few seconds after answering
  70-89  an answering machine: rings, plays a greeting, a 1 kHz beep, then records
  90     busy (486)       91  rings until CANCEL       92  network failure (503)
  93     answers, then hangs up after 2 s

More phones come from a file (``--sandbox FILE``, TOML or JSON), a list of tables like:

    [[phone]]
    number = "5005550300"        # any format; or "pattern" = regex on the 10-digit/E.164 form
    reject = 603                 # answer with this SIP error instead (after `ring` seconds)
    ring = 1.5                   # seconds of ringing (180) before answering; negative: never answers
    early_media = true           # 183 with SDP and ringback tone instead of 180
    say = "Hello, this is Pat."  # spoken on answer (after `say_after` seconds)
    say_after = 0.3
    beep_hz = 1000               # a beep after the greeting (machines)
    beep_ms = 500
    digits = "1234#"             # pressed `digits_after` seconds after answer
    digits_after = 3.0
    hangup_after = 10.0          # hang up this many seconds after answer
    rtp_stop_after = 5.0         # go silent on the network (no RTP) while staying on the call
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from ringback import numbers
from ringback.config import Timings

MACHINE_GREETING = (
    "Hi, you've reached the voicemail of Alex Morgan. I can't take your call right now. "
    "Please leave your name, number and a short message after the tone, and I will call you back."
)


@dataclass(frozen=True)
class PhoneSpec:
    kind: str = "person"  # person | machine | custom (for reports only)
    reject: int | None = None
    ring: float | None = 2.0  # None: never answers
    early_media: bool = False
    say: str | None = None
    say_after: float = 0.2
    beep_hz: float | None = None
    beep_ms: int = 500
    digits: str | None = None
    digits_after: float = 3.0
    hangup_after: float | None = None
    # Stop sending RTP (keeping the SIP dialog up) this many seconds after answer: a dead media path.
    rtp_stop_after: float | None = None
    # Never hang up on their own before this many seconds (protects against stuck calls in tests).
    max_seconds: float = 600.0


@dataclass
class NumberingPlan:
    timings: Timings = field(default_factory=Timings)
    extra: dict[str, PhoneSpec] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], PhoneSpec]] = field(default_factory=list)

    def lookup(self, number: str) -> PhoneSpec | None:
        """The phone behind a canonical number (10 digits or +E.164), or None (SIP 404)."""
        if number in self.extra:
            return self.extra[number]
        for pattern, spec in self.patterns:
            if pattern.fullmatch(number):
                return spec
        return self.builtin(number)

    def builtin(self, number: str) -> PhoneSpec | None:
        if not (numbers.is_nanp(number) and number.startswith("50055501")):
            return None
        n = int(number[-2:])
        t = self.timings
        if n <= 49:
            return PhoneSpec(kind="person", ring=t.person_ring, say="Hello?")
        if n <= 69:
            return PhoneSpec(
                kind="person", ring=t.person_ring, say="Hello?", digits="1234#", digits_after=t.digits_delay
            )
        if n <= 89:
            return PhoneSpec(
                kind="machine", ring=t.machine_ring, say=MACHINE_GREETING, say_after=0.1 + t.greeting_pause,
                beep_hz=1000.0, beep_ms=500,
            )
        if n == 90:
            return PhoneSpec(kind="busy", reject=486, ring=0.0)
        if n == 91:
            return PhoneSpec(kind="no-answer", ring=None)
        if n == 92:
            return PhoneSpec(kind="fail", reject=503, ring=0.0)
        if n == 93:
            return PhoneSpec(kind="person", ring=t.person_ring, say="Hello?", hangup_after=t.hangup_after)
        return None

    @classmethod
    def load(cls, path: str | Path | None, timings: Timings | None = None) -> NumberingPlan:
        plan = cls(timings=timings or Timings())
        if path:
            plan.add_file(path)
        return plan

    def add_file(self, path: str | Path) -> None:
        p = Path(path)
        raw = p.read_bytes()
        data = json.loads(raw) if p.suffix.lower() == ".json" else tomllib.loads(raw.decode())
        entries = data.get("phone", data.get("phones", [])) if isinstance(data, dict) else data
        for entry in entries:
            self.add(entry)

    def add(self, entry: dict[str, object]) -> None:
        entry = dict(entry)
        number = entry.pop("number", None)
        pattern = entry.pop("pattern", None)
        known = set(PhoneSpec.__dataclass_fields__)
        unknown = set(entry) - known
        if unknown:
            raise ValueError(f"unknown sandbox phone keys: {sorted(unknown)}")
        if "ring" not in entry and entry.get("reject") is not None:
            entry["ring"] = 0.0
        ring = entry.get("ring")
        if isinstance(ring, int | float) and ring < 0:
            entry["ring"] = None  # TOML has no null: a negative ring means "never answers"
        spec = replace(PhoneSpec(kind="custom"), **entry)  # type: ignore[arg-type]
        if number is not None:
            self.extra[numbers.normalize(str(number))] = spec
        elif pattern is not None:
            self.patterns.append((re.compile(str(pattern)), spec))
        else:
            raise ValueError("a sandbox phone needs 'number' or 'pattern'")
