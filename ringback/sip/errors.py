"""Errors shared by the SIP modules."""


class ParseError(ValueError):
    """Any malformed SIP input; the transport layer catches it, counts it and drops the message."""
