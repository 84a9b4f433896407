"""Phone numbers as the 2008 API speaks them.

Inputs come in whatever shape a person types (``(415) 867-5309``, ``1 415 867 5309``,
``+44 20 7946 0958``). The canonical stored and rendered form is 10 bare digits for NANP
numbers (as the 2008 docs show) and ``+`` plus digits for everything else. SIP wants E.164.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, shortnumberinfo

# Characters a person may type in a number; anything else (letters, control bytes) is rejected
# before phonenumbers sees it, because it happily maps vanity letters to digits.
_ALLOWED = re.compile(r"^[0-9+()\-. /]+$")
_MAX_INPUT = 40

# N11 service codes (211 community info .. 911 emergency), always blocked when dialled bare.
_N11 = {f"{n}11" for n in range(2, 10)}
# NANP area codes for pay-per-call / premium services.
_PREMIUM_NPA = {"900", "976"}
# Emergency numbers in common use around the world; dialled bare they are refused.
_EMERGENCY_BARE = {"911", "112", "999", "000", "110", "119", "118", "100", "101", "102", "08", "061", "15", "17", "18"}


class NumberError(ValueError):
    """Raised for an unusable number. ``forbidden`` means emergency/premium (REST code 21202)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


def _digits(raw: str) -> str:
    return re.sub(r"\D", "", raw)


def is_forbidden(raw: str) -> bool:
    """True for emergency, N11 and premium-rate numbers (911, 411, 1-900-..., 112, ...)."""
    raw = raw.strip()
    if not raw or len(raw) > _MAX_INPUT or not _ALLOWED.match(raw):
        return False
    digits = _digits(raw)
    bare = digits[1:] if raw.startswith("+1") or (len(digits) == 4 and digits.startswith("1")) else digits
    if not raw.startswith("+") and (digits in _N11 or digits in _EMERGENCY_BARE or bare in _N11):
        return True
    try:
        parsed = phonenumbers.parse(raw, "US")
    except NumberParseException:
        return False
    national = str(parsed.national_number)
    if parsed.country_code == 1:
        if national in _N11 or national in _EMERGENCY_BARE:
            return True
        if len(national) == 10 and national[:3] in _PREMIUM_NPA:
            return True
        if len(national) == 7 and national[:3] == "976":
            return True
    region = phonenumbers.region_code_for_country_code(parsed.country_code)
    if region and region != "ZZ" and shortnumberinfo.is_emergency_number(national, region):
        return True
    return phonenumbers.number_type(parsed) in (PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST) and (
        parsed.country_code != 1
    )


def normalize(raw: str) -> str:
    """Canonical form of a typed number, or NumberError.

    NANP numbers become 10 digits (``4158675309``); others ``+`` and digits (``+442079460958``).
    Emergency and premium numbers raise NumberError(forbidden=True).
    """
    if not isinstance(raw, str):
        raise NumberError("not a string")
    ok, value, forbidden = _normalized(raw)
    if not ok:
        raise NumberError(value, forbidden=forbidden)
    return value


@functools.lru_cache(maxsize=4096)
def _normalized(raw: str) -> tuple[bool, str, bool]:
    """(ok, number or error message, forbidden), remembered per typed text: phonenumbers takes
    about 100 us a number, and the same few numbers (an app's caller ID, the sandbox's phones)
    come back on every call. Bounded, since API clients choose the text."""
    try:
        return True, _normalize(raw), False
    except NumberError as exc:
        return False, str(exc), exc.forbidden


def _normalize(raw: str) -> str:
    raw = raw.strip()
    if not raw:
        raise NumberError("empty number")
    if len(raw) > _MAX_INPUT or not _ALLOWED.match(raw):
        raise NumberError("number contains characters that cannot be dialled")
    if raw.count("+") > 1 or ("+" in raw and not raw.startswith("+")):
        raise NumberError("misplaced '+'")
    if is_forbidden(raw):
        raise NumberError("emergency or premium number", forbidden=True)
    try:
        parsed = phonenumbers.parse(raw, "US")
    except NumberParseException as exc:
        raise NumberError(str(exc)) from exc
    if parsed.country_code == 1:
        national = str(parsed.national_number)
        # NANP: NPA and NXX both start 2-9; a bare 7-digit local number has no area code.
        if len(national) != 10 or national[0] in "01" or national[3] in "01":
            raise NumberError("not a 10-digit NANP number")
        return national
    if not phonenumbers.is_possible_number(parsed):
        raise NumberError("not a possible international number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def try_normalize(raw: str) -> str | None:
    """normalize() that returns None instead of raising (for list filters and lenient inputs)."""
    try:
        return normalize(raw)
    except NumberError:
        return None


def is_nanp(number: str) -> bool:
    """True for a canonical 10-digit NANP number."""
    return len(number) == 10 and number.isdigit()


def to_e164(number: str) -> str:
    """E.164 (``+14158675309``) from a canonical number; also accepts any typed form."""
    if is_nanp(number):
        return "+1" + number
    if number.startswith("+") and number[1:].isdigit():
        return number
    return to_e164(normalize(number))


def from_e164(e164: str) -> str:
    """Canonical number from E.164 (e.g. a SIP user part); NumberError if unusable."""
    if not e164.startswith("+"):
        e164 = "+" + e164 if len(_digits(e164)) > 10 else e164
    return normalize(e164)


def friendly(number: str) -> str:
    """Human form for FriendlyName defaults: ``(415) 867-5309``; international as E.164 spaced."""
    if is_nanp(number):
        return f"({number[:3]}) {number[3:6]}-{number[6:]}"
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def is_sandbox(number: str) -> bool:
    """True for numbers in the built-in sandbox block 500-555-xxxx."""
    return is_nanp(number) and number.startswith("500555")
