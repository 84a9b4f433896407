"""Untrusted TwiML -> a typed, validated verb tree (reference section 5).

defusedxml refuses DTDs, entities and external references; the body size is
capped before parsing.  Validation follows the 2008-08-01 rules: the root must
be <Response> (12102), `version` may only be 2008-08-01 (12101), the nesting
matrix of section 5.3, unknown elements/attributes (12200, element skipped),
and every attribute check of section 5.4 with the default applied.

Fatal problems stop the document (ParseResult.fatal); warnings are reported
and execution goes on.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import defusedxml
import defusedxml.ElementTree as DET

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_SAY_BYTES = 4096
VERSION = "2008-08-01"

# Codes (section 5.4).
PARSE_FAILURE = 12100
BAD_VERSION = 12101
BAD_ROOT = 12102
SCHEMA_WARNING = 12200
WAIT_URL_VERB = 13238


@dataclass(frozen=True)
class Problem:
    code: int
    message: str
    fatal: bool = False


# ---------------------------------------------------------------- the verb tree


@dataclass
class Say:
    text: str
    voice: str = "man"
    language: str = "en"
    loop: int = 1  # 0: until hangup


@dataclass
class Play:
    url: str
    loop: int = 1  # 0: until hangup


@dataclass
class Pause:
    length: int = 1


@dataclass
class Gather:
    action: str | None = None  # None: the current document
    method: str = "POST"
    timeout: int = 5
    finish_on_key: str = "#"  # "" for none
    num_digits: int | None = None  # None: unlimited
    children: list[Say | Play | Pause] = field(default_factory=list)


@dataclass
class Record:
    action: str | None = None  # None: the current document
    method: str = "POST"
    timeout: int = 5
    finish_on_key: str = "1234567890*#"
    max_length: int = 3600
    transcribe: bool = False
    transcribe_callback: str | None = None
    play_beep: bool = True


@dataclass
class Number:
    number: str
    send_digits: str = ""
    url: str | None = None
    method: str = "POST"


@dataclass
class Conference:
    name: str
    muted: bool = False
    beep: bool = True
    start_on_enter: bool = True
    end_on_exit: bool = False
    wait_url: str | None = None  # None: the built-in hold music; "": silence
    wait_method: str = "POST"


@dataclass
class Dial:
    action: str | None = None  # None: fall through, no request
    method: str = "POST"
    timeout: int = 30
    hangup_on_star: bool = False
    time_limit: int = 14400
    caller_id: str | None = None
    numbers: list[Number] = field(default_factory=list)
    conference: Conference | None = None


@dataclass
class Redirect:
    url: str
    method: str = "POST"


@dataclass
class Hangup:
    pass


Verb = Say | Play | Pause | Gather | Record | Dial | Redirect | Hangup


@dataclass
class ParseResult:
    verbs: list[Verb] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def fatal(self) -> Problem | None:
        return next((p for p in self.problems if p.fatal), None)

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.fatal]


# ---------------------------------------------------------------- attribute helpers

_DIGITS_RE = re.compile(r"^[0-9#*]*$")
_SEND_DIGITS_RE = re.compile(r"^[0-9#*wW]*$")
_INT_RE = re.compile(r"^\s*[+]?\d+\s*$")
_NUMBER_STRIP = re.compile(r"[\s\-().]")

RESPONSE_VERBS = frozenset({"Say", "Play", "Gather", "Record", "Dial", "Redirect", "Pause", "Hangup"})
NOT_2008 = frozenset({"Reject", "Sms"})
GATHER_NOUNS = frozenset({"Say", "Play", "Pause"})
WAIT_VERBS = frozenset({"Say", "Play", "Redirect"})


class _Attrs:
    """Reads one element's attributes, reporting bad values and unknown names."""

    def __init__(self, el: ET.Element, known: set[str], out: list[Problem]) -> None:
        self.el = el
        self.out = out
        for name in el.attrib:
            if name not in known:
                out.append(Problem(SCHEMA_WARNING, f"<{el.tag}> has unknown attribute {name!r}"))

    def raw(self, name: str) -> str | None:
        return self.el.attrib.get(name)

    def warn(self, code: int, message: str) -> None:
        self.out.append(Problem(code, f"<{self.el.tag}> {message}"))

    def method(self, name: str, code: int, default: str = "POST") -> str:
        v = self.raw(name)
        if v is None:
            return default
        if v.strip().upper() in ("GET", "POST"):
            return v.strip().upper()
        self.warn(code, f"invalid {name} {v!r}: using {default}")
        return default

    def integer(self, name: str, code: int, default: int, minimum: int) -> int:
        v = self.raw(name)
        if v is None:
            return default
        if _INT_RE.match(v) and int(v) >= minimum:
            return int(v)
        self.warn(code, f"invalid {name} {v!r}: using {default}")
        return default

    def boolean(self, name: str, code: int, default: bool) -> bool:
        v = self.raw(name)
        if v is None:
            return default
        if v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        self.warn(code, f"invalid {name} {v!r}: must be true or false")
        return default

    def url(self, name: str) -> str | None:
        v = self.raw(name)
        if v is None:
            return None
        v = v.strip()
        if not v or any(c in v for c in "\r\n\t "):
            self.warn(11100, f"invalid URL in {name} {v!r}: ignored")
            return None
        return v


def _text(el: ET.Element) -> str:
    return "".join(el.itertext()).strip()


def _no_children(el: ET.Element, out: list[Problem], code: int = SCHEMA_WARNING) -> None:
    for child in el:
        out.append(Problem(code, f"<{child.tag}> is not allowed inside <{el.tag}>: skipped"))


def valid_number(text: str) -> str | None:
    """A dialable number (digits with an optional +), formatting removed."""
    n = _NUMBER_STRIP.sub("", text)
    if re.fullmatch(r"\+?\d{3,15}", n):
        return n
    return None


_FORBIDDEN = re.compile(r"^(?:\+?1)?[2-9]11$")  # N11 service codes (911, 411...)


# ---------------------------------------------------------------- verbs


def _say(el: ET.Element, out: list[Problem], nested: bool) -> Say | None:
    a = _Attrs(el, {"voice", "language", "loop"}, out)
    voice_code, loop_code = (13321, 13322) if nested else (13511, 13510)
    voice = (a.raw("voice") or "man").strip().lower()
    if voice not in ("man", "woman"):
        a.warn(voice_code, f"invalid voice {a.raw('voice')!r}: using man")
        voice = "man"
    language = (a.raw("language") or "en").strip().lower()
    if language not in ("en", "es", "fr", "de"):
        a.warn(voice_code, f"invalid language {a.raw('language')!r}: using en")
        language = "en"
    loop = a.integer("loop", loop_code, 1, 0)
    _no_children(el, out)
    text = _text(el)
    if not text:
        a.warn(13520, "has no text: skipped")
        return None
    if len(text.encode()) > MAX_SAY_BYTES:
        a.warn(13520, f"text exceeds {MAX_SAY_BYTES} bytes: skipped")
        return None
    return Say(text, voice, language, loop)


def _play(el: ET.Element, out: list[Problem]) -> Play | None:
    a = _Attrs(el, {"loop"}, out)
    loop = a.integer("loop", 13410, 1, 0)
    _no_children(el, out)
    url = _text(el)
    if not url or any(c in url for c in "\r\n\t "):
        a.warn(11100, f"invalid URL {url!r}: skipped")
        return None
    return Play(url, loop)


def _pause(el: ET.Element, out: list[Problem]) -> Pause:
    a = _Attrs(el, {"length"}, out)
    length = a.integer("length", 13910, 1, 1)
    _no_children(el, out)
    return Pause(length)


def _gather(el: ET.Element, out: list[Problem]) -> Gather:
    a = _Attrs(el, {"action", "method", "timeout", "finishOnKey", "numDigits"}, out)
    g = Gather(
        action=a.url("action"),
        method=a.method("method", 13312),
        timeout=a.integer("timeout", 13313, 5, 1),
        num_digits=a.integer("numDigits", 13314, 0, 1) or None,
    )
    fok = a.raw("finishOnKey")
    if fok is not None:
        if len(fok) <= 1 and _DIGITS_RE.match(fok):
            g.finish_on_key = fok
        else:
            a.warn(13310, f"invalid finishOnKey {fok!r}: using #")
    if (el.text or "").strip():
        a.warn(13320, "text is not allowed inside <Gather>: ignored")
    for child in el:
        if child.tag == "Say":
            s = _say(child, out, nested=True)
            if s:
                g.children.append(s)
        elif child.tag == "Play":
            p = _play(child, out)
            if p:
                g.children.append(p)
        elif child.tag == "Pause":
            g.children.append(_pause(child, out))
        else:
            out.append(Problem(13320, f"<{child.tag}> is not allowed inside <Gather>: skipped"))
    return g


def _record(el: ET.Element, out: list[Problem]) -> Record:
    a = _Attrs(
        el,
        {"action", "method", "timeout", "finishOnKey", "maxLength", "transcribe", "transcribeCallback",
         "playBeep"},
        out,
    )
    r = Record(
        action=a.url("action"),
        method=a.method("method", 13610),
        timeout=a.integer("timeout", 13611, 5, 1),
        transcribe=a.boolean("transcribe", 13614, False),
        transcribe_callback=a.url("transcribeCallback"),
        play_beep=a.boolean("playBeep", 13616, True),
    )
    # A callback alone implies transcription was wanted (as Twilio read it).
    if r.transcribe_callback and a.raw("transcribe") is None:
        r.transcribe = True
    r.max_length = a.integer("maxLength", 13612, 120 if r.transcribe else 3600, 2)
    if r.transcribe and r.max_length > 120:
        a.warn(13615, f"maxLength {r.max_length} is too high for transcription: not transcribing")
        r.transcribe = False
    fok = a.raw("finishOnKey")
    if fok is not None:
        if _DIGITS_RE.match(fok):
            r.finish_on_key = fok
        else:
            a.warn(13613, f"invalid finishOnKey {fok!r}: using 1234567890*#")
    _no_children(el, out)
    return r


def _number(el: ET.Element, out: list[Problem]) -> Number | None:
    a = _Attrs(el, {"sendDigits", "url", "method"}, out)
    _no_children(el, out, 13215)
    text = _text(el)
    n = valid_number(text)
    if n is None:
        a.warn(13223 if not re.search(r"\d", text) else 13224, f"invalid phone number {text!r}: skipped")
        return None
    if _FORBIDDEN.match(n):
        a.warn(13225, f"forbidden phone number {text!r}: skipped")
        return None
    digits = a.raw("sendDigits") or ""
    if not _SEND_DIGITS_RE.match(digits):
        a.warn(13222, f"invalid sendDigits {digits!r}: ignored")
        digits = ""
    return Number(n, digits, a.url("url"), a.method("method", 13221))


def _conference(el: ET.Element, out: list[Problem]) -> Conference | None:
    a = _Attrs(el, {"muted", "beep", "startConferenceOnEnter", "endConferenceOnExit", "waitUrl",
                    "waitMethod"}, out)
    _no_children(el, out, 13215)
    name = _text(el)
    wait_url = a.raw("waitUrl")
    if wait_url is not None:
        wait_url = wait_url.strip()
        if any(c in wait_url for c in "\r\n\t "):
            a.warn(13233, f"invalid waitUrl {wait_url!r}: using the default hold music")
            wait_url = None
    c = Conference(
        name=name,
        muted=a.boolean("muted", 13230, False),
        end_on_exit=a.boolean("endConferenceOnExit", 13231, False),
        start_on_enter=a.boolean("startConferenceOnEnter", 13232, True),
        wait_url=wait_url,
        wait_method=a.method("waitMethod", 13234),
        beep=a.boolean("beep", 13235, True),
    )
    if not name or len(name) > 128:
        a.warn(13237, f"invalid conference name {name!r}: skipped")
        return None
    return c


def _dial(el: ET.Element, out: list[Problem]) -> Dial:
    a = _Attrs(el, {"action", "method", "timeout", "hangupOnStar", "timeLimit", "callerId"}, out)
    d = Dial(
        action=a.url("action"),
        method=a.method("method", 13210),
        timeout=a.integer("timeout", 13212, 30, 1),
        hangup_on_star=a.boolean("hangupOnStar", 13213, False),
        time_limit=a.integer("timeLimit", 13216, 14400, 1),
    )
    cid = a.raw("callerId")
    if cid is not None and cid.strip():
        d.caller_id = valid_number(cid)
        if d.caller_id is None:
            a.warn(13214, f"invalid callerId {cid!r}: using the caller's")
    text = (el.text or "").strip()
    children = list(el)
    if text and children:
        a.warn(13215, "mixes a number with nested nouns: the text is ignored")
    elif text:
        num = valid_number(text)
        if num is None:
            a.warn(13223 if not re.search(r"\d", text) else 13224, f"invalid phone number {text!r}")
        elif _FORBIDDEN.match(num):
            a.warn(13225, f"forbidden phone number {text!r}")
        else:
            d.numbers.append(Number(num))
    for child in children:
        if child.tag == "Number":
            if d.conference is not None:
                a.warn(13215, "mixes <Number> and <Conference>: <Number> skipped")
                continue
            n = _number(child, out)
            if n:
                d.numbers.append(n)
        elif child.tag == "Conference":
            if d.conference is not None or d.numbers:
                a.warn(13215, "only one <Conference> and no <Number> may be nested: skipped")
                continue
            d.conference = _conference(child, out)
        else:
            out.append(Problem(13215, f"<{child.tag}> is not allowed inside <Dial>: skipped"))
        if (child.tail or "").strip() and not text:
            a.warn(13215, "mixes a number with nested nouns: the text is ignored")
    return d


def _redirect(el: ET.Element, out: list[Problem]) -> Redirect | None:
    a = _Attrs(el, {"method"}, out)
    method = a.method("method", 13710)
    _no_children(el, out)
    url = _text(el)
    if not url or any(c in url for c in "\r\n\t "):
        a.warn(11100, f"invalid URL {url!r}: skipped")
        return None
    return Redirect(url, method)


def _hangup(el: ET.Element, out: list[Problem]) -> Hangup:
    _Attrs(el, set(), out)
    _no_children(el, out)
    return Hangup()


# ---------------------------------------------------------------- documents


def parse(body: bytes | str, *, wait_url: bool = False, max_bytes: int = MAX_DOCUMENT_BYTES) -> ParseResult:
    """Parse and validate one TwiML document.

    With `wait_url`, the document is a Conference waitUrl: only Play, Say and
    Redirect may appear (13238, fatal).
    """
    result = ParseResult()
    out = result.problems
    data = body.encode() if isinstance(body, str) else body
    if len(data) > max_bytes:
        out.append(Problem(PARSE_FAILURE, f"document exceeds {max_bytes} bytes", fatal=True))
        return result
    try:
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as e:
        out.append(Problem(PARSE_FAILURE, f"forbidden XML construct: {type(e).__name__}", fatal=True))
        return result
    except (ET.ParseError, ValueError) as e:
        out.append(Problem(PARSE_FAILURE, f"document is not well-formed XML: {e}", fatal=True))
        return result
    if root.tag != "Response":
        out.append(Problem(BAD_ROOT, f"the root element must be <Response>, not <{root.tag}>", fatal=True))
        return result
    version = root.attrib.get("version")
    if version is not None and version.strip() != VERSION:
        out.append(Problem(BAD_VERSION, f"invalid TwiML version {version!r}", fatal=True))
        return result
    _Attrs(root, {"version"}, out)
    if (root.text or "").strip():
        out.append(Problem(SCHEMA_WARNING, "text directly inside <Response> is ignored"))
    for el in root:
        tag = el.tag
        if (el.tail or "").strip():
            out.append(Problem(SCHEMA_WARNING, "text directly inside <Response> is ignored"))
        if wait_url and tag not in WAIT_VERBS:
            out.append(Problem(WAIT_URL_VERB, f"<{tag}> is not allowed in a waitUrl document", fatal=True))
            return result
        verb: Verb | None
        if tag == "Say":
            verb = _say(el, out, nested=False)
        elif tag == "Play":
            verb = _play(el, out)
        elif tag == "Pause":
            verb = _pause(el, out)
        elif tag == "Gather":
            verb = _gather(el, out)
        elif tag == "Record":
            verb = _record(el, out)
        elif tag == "Dial":
            verb = _dial(el, out)
        elif tag == "Redirect":
            verb = _redirect(el, out)
        elif tag == "Hangup":
            verb = _hangup(el, out)
        elif tag in NOT_2008:
            out.append(Problem(SCHEMA_WARNING, f"<{tag}> is not a 2008-08-01 voice verb: skipped"))
            verb = None
        elif tag in ("Number", "Conference"):
            out.append(Problem(SCHEMA_WARNING, f"<{tag}> is only allowed inside <Dial>: skipped"))
            verb = None
        else:
            out.append(Problem(SCHEMA_WARNING, f"unknown element <{tag}>: skipped"))
            verb = None
        if verb is not None:
            result.verbs.append(verb)
    return result
