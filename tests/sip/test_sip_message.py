"""Parsing and serialising SIP messages, RFC 4475-style torture cases, and fuzzing."""

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.sip.message import ParseError, Request, Response, StreamFramer, Via, parse_message
from ringback.sip.uri import parse_name_addr, parse_uri

INVITE = (
    b"INVITE sip:+14155551212@127.0.0.1:5070 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice A" <sip:+15005551000@10.0.0.1>;tag=1928301774\r\n'
    b"To: <sip:+14155551212@127.0.0.1>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@10.0.0.1:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\n"
    b"v=0\n"
)


def test_parse_request_fields():
    m = parse_message(INVITE)
    assert isinstance(m, Request)
    assert (m.method, m.uri) == ("INVITE", "sip:+14155551212@127.0.0.1:5070")
    assert m.call_id == "a84b4c76e66710@pc33.example.com"
    assert m.cseq == (314159, "INVITE")
    assert m.from_.tag == "1928301774" and m.from_.display == '"Alice A"'
    assert m.from_.uri.user == "+15005551000"
    assert m.to.tag is None
    via = m.top_via
    assert via.branch == "z9hG4bK776asdhds" and "rport" in via.params and via.params["rport"] is None
    assert (via.transport, via.host, via.port) == ("UDP", "10.0.0.1", 5060)
    assert m.body == b"v=0\n"


def test_roundtrip_is_stable():
    m = parse_message(INVITE)
    again = parse_message(bytes(m))
    assert bytes(again) == bytes(m)
    assert again.headers == m.headers and again.body == m.body


def test_response_and_serialise_sets_content_length():
    r = Response(200, "OK", [("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("From", "<sip:a@h>;tag=1"),
                             ("To", "<sip:b@h>;tag=2"), ("Call-ID", "x"), ("CSeq", "1 INVITE")], b"hello")
    data = bytes(r)
    assert data.startswith(b"SIP/2.0 200 OK\r\n") and b"Content-Length: 5\r\n\r\nhello" in data
    p = parse_message(data)
    assert isinstance(p, Response) and p.status == 200 and p.to.tag == "2"


def test_compact_forms_folding_and_multi_values():
    data = (
        b"OPTIONS sip:u@h SIP/2.0\r\n"
        b"v: SIP/2.0/UDP a.example;branch=z9hG4bK1,\r\n"
        b"  SIP/2.0/TCP b.example:5070;branch=z9hG4bK2\r\n"
        b"v: SIP/2.0/UDP c.example;branch=z9hG4bK3\r\n"
        b"f: <sip:a@h>;tag=9\r\nt: sip:u@h\r\ni: cid\r\n"
        b"CSeq: 8 OPTIONS\r\nk: timer, 100rel\r\n"
        b"Subject: first line\r\n\tcontinued\r\n"
        b"m: <sip:a@h>, \"x, y\" <sip:b@h>\r\n"
        b"l: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert [v.host for v in m.vias] == ["a.example", "b.example", "c.example"]
    assert m.vias[1].port == 5070 and m.vias[1].transport == "TCP"
    assert m.get_all("Supported") == ["timer", "100rel"]
    assert m.get("Subject") == "first line continued"
    assert len(m.get_all("Contact")) == 2  # the quoted comma does not split
    assert m.get("Call-ID") == "cid" and m.get("i") == "cid"


def test_content_length_truncates_extra_and_rejects_short():
    base = INVITE.replace(b"Content-Length: 4", b"Content-Length: 2")
    assert parse_message(base).body == b"v="
    with pytest.raises(ParseError):
        parse_message(INVITE.replace(b"Content-Length: 4", b"Content-Length: 400"))


def test_uri_and_name_addr():
    u = parse_uri("sip:+14155551212@127.0.0.1:5070;transport=tcp")
    assert (u.user, u.host, u.port, u.transport) == ("+14155551212", "127.0.0.1", 5070, "tcp")
    assert str(u) == "sip:+14155551212@127.0.0.1:5070;transport=tcp"
    assert parse_uri("sip:user:pw@[::1]:5080").addr == ("::1", 5080)
    assert parse_uri("sips:h").addr == ("h", 5061)
    na = parse_name_addr("sip:u@h;tag=abc")  # addr-spec: the param belongs to the header
    assert na.tag == "abc" and na.uri.params == {}
    na = parse_name_addr('"Bob \\"B\\"" <sip:b@h;lr>;tag=7')
    assert na.tag == "7" and na.uri.params == {"lr": None}
    assert parse_name_addr("<tel:+14155551212>").uri.opaque == "+14155551212"


# RFC 4475-style torture messages, written for this test
WSINV = (
    b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
    b"TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
    b"from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n"
    b"MaX-fOrWaRdS: 0068\r\n"
    b"Call-ID: wsinv.ndaksdj@192.0.2.1\r\n"
    b"Content-Length   : 0\r\n"
    b"cseq: 0009\r\n  INVITE\r\n"
    b"Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n"
    b"s :\r\n"
    b"NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n"
    b"UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Route:\r\n <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n"
    b"v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n"
    b" SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n"
    b"m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n"
    b"      newvalue ;\r\n  secondparam ; q = 0.33\r\n\r\n"
)


def test_torture_whitespace_and_folding():
    m = parse_message(WSINV)
    assert isinstance(m, Request)
    assert m.cseq == (9, "INVITE")
    assert m.to.tag == "1918181833n"
    assert m.from_.tag == "98asjd8"
    assert m.get("Max-Forwards") == "0068"
    assert [v.host for v in m.vias] == ["192.0.2.2", "spindle.example.com", "192.168.255.111"]
    assert m.vias[1].branch == "z9hG4bK9ikj8"


@pytest.mark.parametrize("data", [
    b"",
    b"\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"INVITE sip:u@h SIP/3.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
    INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 REGISTER"),  # method mismatch
    INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 99999999999 INVITE"),  # out of range
    INVITE.replace(b"Call-ID: a84b4c76e66710@pc33.example.com\r\n", b""),  # missing Call-ID
    INVITE.replace(b"Content-Length: 4", b"Content-Length: -4"),
    INVITE.replace(b"Content-Length: 4\r\n", b"Content-Length: 4\r\nContent-Length: 5\r\n"),
    INVITE.replace(b"To: <sip:+14155551212@127.0.0.1>", b"To: <sip:+14155551212@127.0.0.1"),  # unclosed <
    INVITE.replace(b"Via: SIP/2.0/UDP 10.0.0.1:5060", b"Via: SIP/2.0/UDP 10.0.0.1:99999"),  # bad port
    INVITE.replace(b"INVITE sip:+14155551212@127.0.0.1:5070 SIP/2.0", b"INVITE  sip:x@h  SIP/2.0"),
    INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: seventy"),
    b"SIP/2.0 99 Too Low\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
    INVITE.replace(b"From: ", b"From : \x00"),
    b"INVITE sip:u@h SIP/2.0\r\n Via: folded-first\r\n\r\n",
])
def test_malformed_raise_parse_error(data):
    with pytest.raises(ParseError):
        parse_message(data)


def test_stream_framer_splits_and_waits():
    f = StreamFramer()
    two = INVITE + b"\r\n\r\n" + INVITE  # a keep-alive between messages
    out = f.feed(two[:50])
    assert out == []
    out = f.feed(two[50:])
    assert out == [INVITE, INVITE]
    assert f.feed(INVITE[:-1]) == []
    assert f.feed(INVITE[-1:]) == [INVITE]
    with pytest.raises(ParseError):
        StreamFramer(max_message=100).feed(b"X" * 200)
    with pytest.raises(ParseError):
        StreamFramer().feed(b"INVITE sip:u@h SIP/2.0\r\nContent-Length: x\r\n\r\n")


def test_via_str_roundtrip():
    v = Via.parse("SIP/2.0/TCP [::1]:5070;branch=z9hG4bKx;received=1.2.3.4;rport=9")
    assert v.host == "[::1]" and v.port == 5070 and v.params["rport"] == "9"
    assert Via.parse(str(v)) == v


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_only_parse_error(data):
    with contextlib.suppress(ParseError):
        parse_message(data)


_lines = st.sampled_from([
    b"Via: SIP/2.0/UDP h;branch=z9hG4bK1", b"v: SIP/2.0/TCP [::1]:0;rport", b"From: <sip:a@h>;tag=1",
    b"f: sip:a@h;tag", b"To: \"x\" <sip:b@h>", b"t: <tel:1>", b"Call-ID: x", b"i:", b"CSeq: 1 INVITE",
    b"CSeq: 1", b"Content-Length: 3", b"l: 99999999999", b"Contact: *", b"m: <sip:a@h>, <sip:b@",
    b" folded", b"\tfolded", b"Max-Forwards: 1", b"X: \"unterminated", b"Route: <sip:p;lr>,<sip:q>",
    b"Via: SIP/2.0/UDP h:65536", b"From: <sip:a@[::1>;tag=2",
])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"INVITE sip:u@h SIP/2.0", b"SIP/2.0 200 OK", b"BYE sip:x SIP/2.0", b"SIP/2.0 180"]),
       st.lists(_lines, max_size=12), st.binary(max_size=20))
def test_fuzz_structured_only_parse_error(start, lines, body):
    data = b"\r\n".join([start, *lines]) + b"\r\n\r\n" + body
    try:
        m = parse_message(data)
    except ParseError:
        return
    # anything accepted must survive a round trip
    assert bytes(parse_message(bytes(m))) == bytes(m)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_fuzz_framer(data, chunk):
    f = StreamFramer(max_message=1000)
    try:
        for i in range(0, len(data), chunk):
            for msg in f.feed(data[i : i + chunk]):
                with contextlib.suppress(ParseError):
                    parse_message(msg)
    except ParseError:
        pass


def test_header_lookups_follow_every_kind_of_header_change() -> None:
    """Lookups read an index built once per header list: every way of changing the headers must
    show in the next lookup."""
    from ringback.sip.message import Request

    msg = Request("OPTIONS", "sip:a@h", [("Via", "SIP/2.0/UDP h;branch=z9hG4bK1"), ("X-Foo", "1")])
    assert msg.get("x-foo") == "1" and msg.get_all("Via") == ["SIP/2.0/UDP h;branch=z9hG4bK1"]
    msg.add("X-Foo", "2")
    assert msg.get_all("X-FOO") == ["1", "2"]
    msg.set("x-foo", "3")
    assert msg.get_all("X-Foo") == ["3"]
    msg.add("v", "SIP/2.0/UDP p;branch=z9hG4bK0", first=True)  # compact form of Via
    assert [v.host for v in msg.vias] == ["p", "h"]
    msg.remove("X-Foo")
    assert msg.get("X-Foo") is None
    msg.headers = [("Via", "SIP/2.0/TCP q;branch=z9hG4bK2, SIP/2.0/UDP r;branch=z9hG4bK3")]
    assert [v.host for v in msg.vias] == ["q", "r"] and msg.get("Via", "").startswith("SIP/2.0/TCP q")


def test_parsed_name_addrs_are_never_shared() -> None:
    """parse_name_addr may answer from a cache of parsed values: what it returns must be a copy."""
    from ringback.sip.uri import parse_name_addr

    value = '"Alice" <sip:+15005551000@127.0.0.1;transport=udp>;tag=abc'
    first = parse_name_addr(value)
    first.params["tag"] = "changed"
    first.uri.params.pop("transport")
    first.uri.user = "someone-else"
    again = parse_name_addr(value)
    assert again.params == {"tag": "abc"} and again.uri.params == {"transport": "udp"}
    assert again.uri.user == "+15005551000" and again.display == '"Alice"'
