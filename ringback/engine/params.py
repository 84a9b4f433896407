"""The parameters every request to an app carries (reference 4.1)."""

from __future__ import annotations

from ringback.engine.geo import request_params


def call_params(call_sid: str, account_sid: str, caller: str, called: str, call_status: str) -> dict[str, str]:
    """CallSid/AccountSid and their early-docs twins CallGuid/AccountGuid (both sent, reference 7.1),
    Caller, Called, CallStatus, and the numbers' geography where known."""
    params = {
        "CallSid": call_sid,
        "CallGuid": call_sid,
        "AccountSid": account_sid,
        "AccountGuid": account_sid,
        "Caller": caller,
        "Called": called,
        "CallStatus": call_status,
    }
    params.update(request_params(caller, called))
    return params
