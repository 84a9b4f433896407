from __future__ import annotations

import pytest

from ringback.twiml.parse import (
    Conference,
    Dial,
    Gather,
    Hangup,
    Number,
    Pause,
    Play,
    Record,
    Redirect,
    Say,
    parse,
)


def one(xml: str) -> tuple[object, list[int]]:
    r = parse(f"<Response>{xml}</Response>")
    assert r.fatal is None
    return (r.verbs[0] if r.verbs else None), [p.code for p in r.problems]


def test_defaults() -> None:
    r = parse("<Response><Say>a</Say><Play>u</Play><Pause/><Gather/><Record/><Dial>4155550100</Dial>"
              "<Redirect>x</Redirect><Hangup/></Response>")
    assert r.problems == []
    assert r.verbs == [
        Say("a", "man", "en", 1), Play("u", 1), Pause(1), Gather(None, "POST", 5, "#", None, []),
        Record(None, "POST", 5, "1234567890*#", 3600, False, None, True),
        Dial(None, "POST", 30, False, 14400, None, [Number("4155550100")], None), Redirect("x", "POST"), Hangup(),
    ]


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ('<Say voice="robot">a</Say>', 13511),
        ('<Say language="it">a</Say>', 13511),
        ('<Say loop="-1">a</Say>', 13510),
        ("<Say></Say>", 13520),
        ("<Say>" + "x" * 4097 + "</Say>", 13520),
        ('<Play loop="x">u</Play>', 13410),
        ('<Pause length="0"/>', 13910),
        ('<Gather finishOnKey="12"/>', 13310),
        ('<Gather method="PUT"/>', 13312),
        ('<Gather timeout="0"/>', 13313),
        ('<Gather numDigits="0"/>', 13314),
        ("<Gather><Record/></Gather>", 13320),
        ('<Gather><Say voice="x">a</Say></Gather>', 13321),
        ('<Gather><Say loop="x">a</Say></Gather>', 13322),
        ('<Record method="x"/>', 13610),
        ('<Record timeout="x"/>', 13611),
        ('<Record maxLength="1"/>', 13612),
        ('<Record finishOnKey="a"/>', 13613),
        ('<Record transcribe="yes"/>', 13614),
        ('<Record transcribe="true" maxLength="121"/>', 13615),
        ('<Record playBeep="no"/>', 13616),
        ('<Dial method="x">4155550100</Dial>', 13210),
        ('<Dial timeout="-3">4155550100</Dial>', 13212),
        ('<Dial hangupOnStar="1">4155550100</Dial>', 13213),
        ('<Dial callerId="abc">4155550100</Dial>', 13214),
        ("<Dial><Say>a</Say></Dial>", 13215),
        ('<Dial timeLimit="0">4155550100</Dial>', 13216),
        ('<Dial><Number method="x">4155550100</Number></Dial>', 13221),
        ('<Dial><Number sendDigits="12a">4155550100</Number></Dial>', 13222),
        ("<Dial><Number>call me</Number></Dial>", 13223),
        ("<Dial><Number>12</Number></Dial>", 13224),
        ("<Dial>911</Dial>", 13225),
        ('<Dial><Conference muted="x">r</Conference></Dial>', 13230),
        ('<Dial><Conference endConferenceOnExit="x">r</Conference></Dial>', 13231),
        ('<Dial><Conference startConferenceOnEnter="x">r</Conference></Dial>', 13232),
        ('<Dial><Conference waitUrl="a b">r</Conference></Dial>', 13233),
        ('<Dial><Conference waitMethod="x">r</Conference></Dial>', 13234),
        ('<Dial><Conference beep="x">r</Conference></Dial>', 13235),
        ("<Dial><Conference></Conference></Dial>", 13237),
        ('<Redirect method="x">u</Redirect>', 13710),
        ("<Reject/>", 12200),
        ("<Sms>hi</Sms>", 12200),
        ("<Foo/>", 12200),
        ('<Hangup now="1"/>', 12200),
        ("<Number>4155550100</Number>", 12200),
        ("<Say>a<Play>b</Play></Say>", 12200),
    ],
)
def test_attribute_errors_are_warnings_with_defaults(xml: str, code: int) -> None:
    r = parse(f"<Response>{xml}<Hangup/></Response>")
    assert r.fatal is None
    assert code in [p.code for p in r.problems]
    assert isinstance(r.verbs[-1], Hangup)  # execution goes on


def test_values_parsed() -> None:
    g, _ = one('<Gather action="/a" method="get" timeout="9" finishOnKey="" numDigits="4"><Pause length="2"/></Gather>')
    assert g == Gather("/a", "GET", 9, "", 4, [Pause(2)])
    r, _ = one('<Record transcribeCallback="/t" finishOnKey="#" maxLength="30" playBeep="false" timeout="2"/>')
    assert isinstance(r, Record) and r.transcribe and r.max_length == 30 and r.finish_on_key == "#"
    r2, _ = one('<Record transcribe="true"/>')
    assert isinstance(r2, Record) and r2.max_length == 120
    c, _ = one('<Dial><Conference waitUrl="" muted="TRUE">room</Conference></Dial>')
    assert isinstance(c, Dial) and c.conference == Conference("room", muted=True, wait_url="")


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ("<Response>", 12100),
        ("", 12100),
        ("<Reply/>", 12102),
        ('<Response version="2010-04-01"/>', 12101),
        ('<!DOCTYPE Response [<!ENTITY x "y">]><Response/>', 12100),
        ('<!DOCTYPE Response SYSTEM "http://evil/x.dtd"><Response/>', 12100),
        ("<Response>" + " " * 300_000 + "</Response>", 12100),
    ],
)
def test_fatal(doc: str, code: int) -> None:
    r = parse(doc)
    assert r.fatal is not None and r.fatal.code == code and r.verbs == []


def test_version_and_comments_allowed() -> None:
    r = parse('<?xml version="1.0"?><!-- hi --><Response version="2008-08-01"><!-- c --><Say>a</Say></Response>')
    assert r.problems == [] and r.verbs == [Say("a")]


def test_wait_url_documents() -> None:
    ok = parse("<Response><Play>u</Play><Say>s</Say><Redirect>r</Redirect></Response>", wait_url=True)
    assert ok.fatal is None and len(ok.verbs) == 3
    bad = parse("<Response><Say>s</Say><Pause/></Response>", wait_url=True)
    assert bad.fatal is not None and bad.fatal.code == 13238
