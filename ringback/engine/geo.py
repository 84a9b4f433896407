"""Caller/Called geography for app requests (CallerCity, CallerState, CallerZip, CallerCountry).

Only what is known is sent (reference 4.1). phonenumbers' offline geocoder gives a city and state
for many NANP exchanges ("New York, NY") and a state alone for others ("California"); it has no
ZIP codes, so *Zip is never sent.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import geocoder

from ringback import numbers

# US/Canadian state names as the geocoder prints them, to two-letter codes.
_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Washington D.C.": "DC", "Ontario": "ON", "Quebec": "QC", "British Columbia": "BC",
    "Alberta": "AB", "Manitoba": "MB", "Saskatchewan": "SK", "Nova Scotia": "NS",
    "New Brunswick": "NB", "Newfoundland and Labrador": "NL", "Prince Edward Island": "PE",
}  # fmt: skip


@lru_cache(maxsize=4096)
def lookup(number: str) -> dict[str, str]:
    """{'City': ..., 'State': ..., 'Country': ...} with only the known keys."""
    try:
        parsed = phonenumbers.parse(numbers.to_e164(number), None)
    except (phonenumbers.NumberParseException, numbers.NumberError):
        return {}
    out: dict[str, str] = {}
    region = phonenumbers.region_code_for_number(parsed)
    if region and region != "ZZ":
        out["Country"] = region
    desc = geocoder.description_for_number(parsed, "en")
    if not desc:
        return out
    if parsed.country_code == 1:
        city, _, state = desc.rpartition(", ")
        if city:
            out["City"], out["State"] = city, state
        elif desc in _STATES:
            out["State"] = _STATES[desc]
    elif desc != phonenumbers.region_code_for_number(parsed):
        out["City"] = desc
    return out


def request_params(caller: str, called: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for prefix, number in (("Caller", caller), ("Called", called)):
        for key, value in lookup(number).items():
            params[prefix + key] = value
    return params
