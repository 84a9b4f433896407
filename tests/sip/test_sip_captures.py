"""Messages real peers sent us on loopback (SIPp as registrar, trunk and caller; Kamailio as a
record-routing proxy over UDP and TCP), recorded by the interop tests with RINGBACK_RECORD_CAPTURES=1
into tests/sip/captures/.  Each must parse, round-trip, and be taken by the core without an exception."""

from pathlib import Path

import pytest

from ringback.sip.endpoint import SipEndpoint
from ringback.sip.message import Request, Response, parse_message

CAPTURES = sorted((Path(__file__).parent / "captures").glob("*.sip"))


def test_the_corpus_covers_each_peer():
    peers = {p.stem.split("-")[0] for p in CAPTURES}
    assert {"sipp", "kamailio"} <= peers


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.stem)
def test_capture_parses_and_round_trips(path):
    m = parse_message(path.read_bytes())
    again = parse_message(bytes(m))
    assert [h for h in again.headers if h[0] != "Content-Length"] == \
        [h for h in m.headers if h[0] != "Content-Length"]
    assert again.body == m.body and bytes(again) == bytes(m)
    assert isinstance(m, Request | Response)


def test_kamailio_adds_its_via_and_record_route():
    invites = [parse_message(p.read_bytes()) for p in CAPTURES if p.stem.startswith("kamailio")]
    invites = [m for m in invites if isinstance(m, Request) and m.method == "INVITE" and m.to.tag is None]
    assert invites
    for m in invites:
        assert len(m.vias) == 2 and m.get_all("Record-Route")


def test_the_core_takes_every_capture_without_error():
    ep = SipEndpoint("127.0.0.1", 5060, t1=0.5)
    for i, path in enumerate(CAPTURES):
        ep.receive_datagram(path.read_bytes(), ("127.0.0.1", 40000 + i), float(i))
        ep.datagrams_to_send()
        while (ev := ep.next_event()) is not None:
            if hasattr(ev, "request"):
                ep.reject(ev.call_id, 480, now=float(i))
    ep.handle_timer(1e6)
    ep.handle_timer(2e6)
    assert ep.idle and ep.stats["malformed"] == 0
