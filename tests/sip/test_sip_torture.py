"""The parser against the world: RFC 4475 torture messages (tests/sip/torture/{valid,invalid}/*.sip, written
as the RFC prints them), what the endpoint answers to them, and property tests of parser and transactions."""

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringback.sip.endpoint import SipEndpoint
from ringback.sip.message import ParseError, Request, Response, parse_message
from ringback.sip.simnet import SimNetwork
from ringback.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TimerConfig,
)
from ringback.sip.uri import parse_name_addr, parse_uri

HERE = Path(__file__).parent / "torture"
VALID = sorted((HERE / "valid").glob("*.sip"))
INVALID = sorted((HERE / "invalid").glob("*.sip"))


def hdrs(m):
    """Headers without Content-Length, which serialising recomputes and moves last."""
    return [(n, v) for n, v in m.headers if n != "Content-Length"]


def load(name: str) -> bytes:
    return next(p for p in VALID + INVALID if p.stem == name).read_bytes()


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_torture_messages_parse_and_round_trip(path):
    m = parse_message(path.read_bytes())
    again = parse_message(bytes(m))
    assert hdrs(again) == hdrs(m) and again.body == m.body
    assert bytes(again) == bytes(m)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_torture_messages_are_parse_errors(path):
    with pytest.raises(ParseError):
        parse_message(path.read_bytes())


def test_intmeth_every_odd_token_is_kept():
    m = parse_message(load("intmeth"))
    assert isinstance(m, Request)
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq == (139122385, m.method)
    uri = parse_uri(m.uri)
    assert uri.host == "example.com"
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert "\x00" in (m.to.display or "")  # the escaped NUL inside the quoted display name
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\}{"
    assert m.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_escapes_are_not_decoded_into_meaning():
    esc02 = parse_message(load("esc02"))
    # RE%47IST%45R is an unknown method, and C%6Fntact an unknown header, not REGISTER / Contact
    assert isinstance(esc02, Request) and esc02.method == "RE%47IST%45R"
    assert [parse_name_addr(c).uri.host for c in esc02.get_all("Contact")] == ["host1.example.com",
                                                                               "host3.example.com"]
    esc01 = parse_message(load("esc01"))
    assert parse_uri(esc01.uri).user == "sips%3Auser%40example.com"
    assert esc01.to.uri.user == "%75se%72"
    null = parse_message(load("escnull"))
    assert null.to.uri.user == "null-%00-null"


def test_multi_values_long_messages_and_odd_transports():
    long = parse_message(load("longreq"))
    assert len(long.vias) == 34 and len(long.body) == int(long.get("Content-Length"))
    semi = parse_message(load("semiuri"))
    assert parse_uri(semi.uri).user == "user;par=u%40example.net"
    assert len(semi.get_all("Accept")) == 6
    tr = parse_message(load("transports"))
    assert [v.transport for v in tr.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    mp = parse_message(load("mpart01"))
    assert bytes(range(256)) in mp.body  # binary body kept byte for byte
    dbl = parse_message(load("dblreq"))
    assert isinstance(dbl, Request) and dbl.method == "REGISTER" and dbl.body == b""


def test_odd_responses():
    unreason = parse_message(load("unreason"))
    assert isinstance(unreason, Response) and unreason.status == 200 and "простое" in unreason.reason
    noreason = parse_message(load("noreason"))
    assert isinstance(noreason, Response) and noreason.status == 100 and noreason.reason == ""


def test_lenient_cases_parse_to_the_obvious_reading():
    badaspec = parse_message(load("badaspec"))  # spaces inside <...>: liberal reading allowed by 4475
    assert badaspec.to.uri.user == "t.watson"
    assert parse_message(load("unksm2")).to.uri.scheme == "isbn"
    assert parse_uri(parse_message(load("novelsc")).uri).scheme == "soap.beep"


def test_redundant_semicolons_are_tolerated_and_bare_nul_is_not():
    assert parse_message(b"\r\n\r\n" + load("lwsdisp")).from_.display == "caller"  # leading CRLFs (7.5)
    with pytest.raises(ParseError):
        parse_message(load("escnull-outside-quotes"))


# ------------------------------------------------------------------------------ what the endpoint answers

B = ("127.0.0.2", 5070)
SRC = ("192.0.2.5", 5060)


def answers(name: str, **kw) -> list[Response]:
    net = SimNetwork()
    ep = net.add(SipEndpoint(*B, t1=0.5, **kw))
    net.on_event = lambda e, ev: hasattr(ev, "request") and e.reject(ev.call_id, 486, now=net.now)
    net.inject(load(name), SRC, B)
    net.run(until=net.now + 100)
    assert ep.idle
    return [parse_message(d) for _, _, _, d in net.log]


def test_endpoint_answers_bext01_with_420_listing_the_unknown_extensions():
    (r,) = answers("bext01")
    assert r.status == 420
    assert r.get_all("Unsupported") == ["nothingSupportsThis", "nothingSupportsThisEither"]


def test_endpoint_answers_zeromf_options_and_rfc2543_invite():
    assert [r.status for r in answers("zeromf")] == [200]
    codes = [r.status for r in answers("inv2543")]
    assert codes[0] == 100 and 486 in codes


def test_endpoint_never_answers_to_a_broadcast_via():
    data = load("baddate").replace(b"Via: SIP/2.0/UDP host.example.com;",
                                   b"Via: SIP/2.0/UDP 255.255.255.255;")
    net = SimNetwork()
    net.add(SipEndpoint(*B, t1=0.5))
    net.inject(data, SRC, B)
    net.run(until=net.now + 1)
    assert net.log and {dst for _, _, dst, _ in net.log} == {SRC}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_endpoint_drops_invalid_messages_silently(path):
    ep = SipEndpoint(*B, t1=0.5)
    ep.receive_datagram(path.read_bytes(), SRC, 0.0)
    assert ep.datagrams_to_send() == [] and ep.idle and ep.stats["malformed"] == 1


# ------------------------------------------------------------------------------ property tests

@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID + INVALID), st.data())
def test_mutated_torture_messages_only_parse_error(path, data):
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "dup"]))
        i = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            raw[i:i] = data.draw(st.sampled_from([b"\r\n", b" ", b";", b",", b"<", b">", b'"', b"\\", b":",
                                                  b"@", b"%", b"\x00", b"\r\n ", b"=", b"[", b"]"]))
        elif op == "delete" and raw:
            del raw[i : i + data.draw(st.integers(1, 8))]
        elif op == "dup":
            raw[i:i] = raw[i : i + data.draw(st.integers(1, 40))]
    try:
        m = parse_message(bytes(raw))
    except ParseError:
        return
    # what was accepted must serialise to something that parses the same way
    again = parse_message(bytes(m))
    assert hdrs(again) == hdrs(m) and again.body == m.body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.lists(st.tuples(st.sampled_from(["datagram", "timer"]),
                                                 st.floats(0, 40), st.binary(max_size=40)), max_size=8))
def test_endpoint_fed_torture_and_noise_never_raises_and_ends_idle(path, steps):
    ep = SipEndpoint(*B, t1=0.5)
    now = 0.0
    base = path.read_bytes()
    for kind, dt, noise in steps:
        now += dt
        if kind == "timer":
            ep.handle_timer(now)
        else:
            ep.receive_datagram(base + noise, SRC, now)
            ep.receive_datagram(noise + base, SRC, now)
        ep.datagrams_to_send()
        while (ev := ep.next_event()) is not None:
            if hasattr(ev, "request"):
                ep.reject(ev.call_id, 480, now=now)
    ep.handle_timer(now + 10_000)
    ep.handle_timer(now + 20_000)
    assert ep.idle


_RESP = st.builds(lambda code, tag: (code, tag), st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 500, 603]),
                  st.sampled_from([None, "t1", "t2"]))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["INVITE", "OPTIONS"]), st.sampled_from(["udp", "tcp"]),
       st.lists(st.one_of(st.tuples(st.just("resp"), _RESP), st.tuples(st.just("tick"), st.floats(0, 70))),
                max_size=15))
def test_client_transactions_under_any_response_sequence(method, transport, steps):
    """Any order of responses and timer ticks: no exception, at most one final reaches the TU
    (2xx retransmissions aside), and the transaction always terminates."""
    req = Request(method, "sip:b@h", [("Via", "SIP/2.0/UDP a;branch=z9hG4bKx"), ("From", "<sip:a@h>;tag=f"),
                                      ("To", "<sip:b@h>"), ("Call-ID", "c"), ("CSeq", f"1 {method}")])
    cls = ClientInviteTransaction if method == "INVITE" else ClientNonInviteTransaction
    tx = cls(req, ("127.0.0.1", 5060), transport, TimerConfig.scaled(0.5), 0.0)
    now = 0.0
    finals = []
    for kind, arg in steps:
        if kind == "tick":
            now += arg
            out = tx.handle_timer(now)
        else:
            code, tag = arg
            to = "<sip:b@h>" + (f";tag={tag}" if tag else "")
            resp = Response(code, "X", [("Via", "SIP/2.0/UDP a;branch=z9hG4bKx"), ("From", "<sip:a@h>;tag=f"),
                                        ("To", to), ("Call-ID", "c"), ("CSeq", f"1 {method}")])
            out = tx.receive_response(resp, now)
        finals += [(r.status, r.to.tag) for r in out if isinstance(r, Response) and r.status >= 200]
    non2xx = [f for f in finals if f[0] >= 300]
    assert len(non2xx) <= 1 and not (non2xx and any(f[0] < 300 for f in finals))
    if method != "INVITE":
        assert len(finals) <= 1
    tx.handle_timer(now + 1000)
    tx.handle_timer(now + 2000)
    assert tx.terminated


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["INVITE", "BYE"]), st.sampled_from(["udp", "tcp"]),
       st.lists(st.one_of(st.tuples(st.just("req"), st.sampled_from(["same", "ACK"])),
                          st.tuples(st.just("send"), st.sampled_from([100, 180, 200, 486])),
                          st.tuples(st.just("tick"), st.floats(0, 70))), max_size=15))
def test_server_transactions_under_any_sequence(method, transport, steps):
    req = Request(method, "sip:b@h", [("Via", "SIP/2.0/UDP a;branch=z9hG4bKy"), ("From", "<sip:a@h>;tag=f"),
                                      ("To", "<sip:b@h>"), ("Call-ID", "c"), ("CSeq", f"1 {method}")])
    cls = ServerInviteTransaction if method == "INVITE" else ServerNonInviteTransaction
    tx = cls(req, ("127.0.0.1", 5060), transport, TimerConfig.scaled(0.5), 0.0)
    now = 0.0
    sent_finals = 0
    for kind, arg in steps:
        if kind == "tick":
            now += arg
            tx.handle_timer(now)
        elif kind == "send":
            before = tx.final_code
            resp = Response(arg, "X", [("Via", "SIP/2.0/UDP a;branch=z9hG4bKy"), ("From", "<sip:a@h>;tag=f"),
                                       ("To", "<sip:b@h>;tag=s"), ("Call-ID", "c"), ("CSeq", f"1 {method}")])
            tx.send_response(resp, now)
            sent_finals += before is None and tx.final_code is not None
        else:
            ack = Request("ACK", "sip:b@h", list(req.headers))
            ack.set("CSeq", "1 ACK")
            tx.receive_request(req if arg == "same" else ack, now)
        tx.outgoing.clear()
    assert sent_finals <= 1
    if tx.final_code is not None:
        tx.handle_timer(now + 1000)
        tx.handle_timer(now + 2000)
        assert tx.terminated


def test_random_garbage_through_the_simulated_network_never_raises():
    import random

    rng = random.Random(7)
    net = SimNetwork()
    ep = net.add(SipEndpoint(*B, t1=0.5))
    corpus = [p.read_bytes() for p in VALID + INVALID]
    for _ in range(3000):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randint(0, 4)):
            i = rng.randrange(len(data))
            data[i] = rng.randrange(256)
        with contextlib.suppress(ParseError):
            ep.receive_datagram(bytes(data), SRC, net.now)
        ep.datagrams_to_send()
        while (ev := ep.next_event()) is not None:
            if hasattr(ev, "request"):
                ep.reject(ev.call_id, 480, now=net.now)
    ep.handle_timer(net.now + 10_000)
    ep.handle_timer(net.now + 20_000)
    assert ep.idle
