"""ringback's SIP stack: sans-IO protocol cores (message, transaction, dialog, auth, sdp, endpoint)
and the asyncio UserAgent (ua.py) that the engine and the sandbox use."""

from ringback.sip.errors import ParseError
from ringback.sip.events import Answered, CallEvent, Cancelled, Dtmf, Failed, Hangup, Ringing
from ringback.sip.sdp import MediaParams, NoCommonCodec, make_answer, make_offer, parse_answer
from ringback.sip.ua import IncomingCall, OutgoingCall, UserAgent

__all__ = [
    "ParseError", "Answered", "CallEvent", "Cancelled", "Dtmf", "Failed", "Hangup", "Ringing", "MediaParams",
    "NoCommonCodec", "make_answer", "make_offer", "parse_answer", "IncomingCall", "OutgoingCall", "UserAgent",
]
