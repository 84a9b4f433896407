"""RestException: every error the API returns, with its 2008 error code."""

from __future__ import annotations

MORE_INFO = "http://www.twilio.com/docs/errors/{code}"

# Codes this API emits (reference section 3.5); tests check every 4xx carries one of them.
MESSAGES: dict[int, str] = {
    20001: "Unknown parameters",
    20002: "Invalid FriendlyName",
    20003: "Permission Denied",
    20004: "Method not allowed",
    20005: "Account not active",
    21201: "No called number is specified",
    21202: "Called number is a premium number",
    21205: "Invalid URL",
    21206: "Invalid SendDigits",
    21207: "Invalid IfMachine",
    21208: "Invalid Timeout",
    21209: "Invalid Method",
    21210: "Caller phone number not verified",
    21211: "Invalid Called Phone Number",
    21212: "Invalid Caller Phone Number",
    21213: "Caller phone number is required",
    21220: "Invalid call state",
    21401: "Invalid Phone Number",
    21402: "Invalid Url",
    21403: "Invalid Method",
    21405: "Cannot set VoiceFallbackUrl without setting Url",
    21450: "Phone number already validated on your account",
    21451: "Invalid area code",
    21452: "No phone numbers found in area code",
    21453: "Phone number already validated on another account",
    21454: "Invalid CallDelay",
}
KNOWN_CODES = frozenset(MESSAGES)


class RestError(Exception):
    """An error answered as a RestException. code None for plain 404/405 without a code."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def bad(code: int, message: str | None = None) -> RestError:
    """A 400 with the code's standard message unless a more precise one is given."""
    return RestError(400, message or MESSAGES[code], code)


def not_found() -> RestError:
    return RestError(404, "The requested resource was not found")


def method_not_allowed(message: str = "Method not allowed") -> RestError:
    return RestError(405, message, 20004)


def unauthorized() -> RestError:
    return RestError(401, "Authenticate", 20003)
