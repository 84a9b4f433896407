"""X-Twilio-Signature: the 2008-era webhook signing scheme (reference section 4.2).

The signed string is the exact URL requested followed by each POST parameter's
name and value, sorted by name, with no separators and no URL-encoding.  GET
parameters already live in the URL, so nothing is appended for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

HEADER = "X-Twilio-Signature"


def _pairs(params: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(k), "" if v is None else str(v)) for k, v in items]


def signature_base(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> str:
    """The string that gets HMACed: url + k1 + v1 + k2 + v2 ... (keys sorted)."""
    # A stable sort on the key alone keeps repeated keys in their sent order.
    return url + "".join(k + v for k, v in sorted(_pairs(params), key=lambda kv: kv[0]))


def compute_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
) -> str:
    """Base64 HMAC-SHA1 of signature_base(url, params), keyed with the AuthToken."""
    mac = hmac.new(auth_token.encode(), signature_base(url, params).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def validate_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    signature: str,
) -> bool:
    """Constant-time check of a received X-Twilio-Signature."""
    return hmac.compare_digest(compute_signature(auth_token, url, params), signature or "")
