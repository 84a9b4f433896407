"""Resource identifiers in Twilio's 2008 shape: a two-letter prefix and 32 lowercase hex digits."""

from __future__ import annotations

import re
import secrets

SID_RE = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")

# Prefixes used by the 2008-08-01 API (reference section 1).
ACCOUNT = "AC"
CALL = "CA"
PHONE_NUMBER = "PN"
RECORDING = "RE"
TRANSCRIPTION = "TR"
NOTIFICATION = "NO"
CONFERENCE = "CF"
VALIDATION = "VA"


def new_sid(prefix: str) -> str:
    """A fresh 34-character SID; 128 random bits so SIDs never collide across nodes."""
    if len(prefix) != 2 or not prefix.isalpha() or not prefix.isupper():
        raise ValueError(f"SID prefix must be two upper-case letters, got {prefix!r}")
    return prefix + secrets.token_hex(16)


def new_auth_token() -> str:
    """A fresh AuthToken: 32 lowercase hex digits."""
    return secrets.token_hex(16)


def is_sid(value: str, prefix: str | None = None) -> bool:
    """True when value looks like a SID (optionally with the given prefix)."""
    if not SID_RE.match(value):
        return False
    return prefix is None or value.startswith(prefix)
