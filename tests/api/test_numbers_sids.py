from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringback import numbers
from ringback.sids import is_sid, new_auth_token, new_sid


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("(415) 867-5309", "4158675309"),
        ("415-867-5309", "4158675309"),
        ("1 415 867 5309", "4158675309"),
        ("+14158675309", "4158675309"),
        ("415.867.5309", "4158675309"),
        ("+44 20 7946 0958", "+442079460958"),
        ("5005551000", "5005551000"),
    ],
)
def test_normalize_accepts_what_people_type(raw: str, expected: str) -> None:
    assert numbers.normalize(raw) == expected


@pytest.mark.parametrize("raw", ["911", "411", "1-900-555-1212", "+1 900 555 1212", "112", "999", "1-976-555-1212"])
def test_emergency_and_premium_are_forbidden(raw: str) -> None:
    with pytest.raises(numbers.NumberError) as exc:
        numbers.normalize(raw)
    assert exc.value.forbidden


@pytest.mark.parametrize("raw", ["", "abc", "123", "867-5309", "415-867-530", "0158675309", "4151234567890123",
                                 "41586753O9", "+", "++14158675309", "415+8675309"])
def test_invalid_numbers(raw: str) -> None:
    with pytest.raises(numbers.NumberError) as exc:
        numbers.normalize(raw)
    assert not exc.value.forbidden


def test_e164_round_trip() -> None:
    assert numbers.to_e164("4158675309") == "+14158675309"
    assert numbers.to_e164("+442079460958") == "+442079460958"
    assert numbers.from_e164("+15005550100") == "5005550100"
    assert numbers.friendly("4158675309") == "(415) 867-5309"
    assert numbers.is_sandbox("5005550100") and not numbers.is_sandbox("4158675309")


@given(st.text(max_size=60))
def test_normalize_never_crashes(raw: str) -> None:
    try:
        out = numbers.normalize(raw)
    except numbers.NumberError:
        return
    assert out == numbers.normalize(out)  # canonical form is a fixed point
    assert (len(out) == 10 and out.isdigit()) or (out.startswith("+") and out[1:].isdigit())


def test_sids() -> None:
    a, b = new_sid("CA"), new_sid("CA")
    assert a != b and len(a) == 34 and is_sid(a, "CA") and not is_sid(a, "AC")
    assert a[2:] == a[2:].lower()
    tok = new_auth_token()
    assert len(tok) == 32 and int(tok, 16) >= 0
    with pytest.raises(ValueError):
        new_sid("ca")
