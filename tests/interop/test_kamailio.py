"""One full call through Kamailio as a record-routing proxy: ringback -> kamailio -> SIPp (UAS).

Every in-dialog request (ACK, BYE) must follow the Record-Route through the proxy, in both directions,
and the proxy's digest challenge (407) must be answered with the trunk's credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import start_ringback
from .peers import kamailio_proxy, sipp_uas

pytestmark = pytest.mark.interop


async def test_call_through_record_routing_proxy_udp_far_end_hangs_up(tmp_path: Path) -> None:
    async with (
        sipp_uas("uas_answer_bye.xml", tmp_path / "sipp", keys={"te": "101"}, pause_ms=1200) as sipp,
        kamailio_proxy(tmp_path / "kam", sipp.port) as kam,
        start_ringback(tmp_path / "rb", f"sip:127.0.0.1:{kam.port}") as h,
    ):
        h.app.twiml("/app", '<Response><Pause length="10"/></Response>')
        sid = await h.make_call("/app")
        call = await h.wait_final(sid)
        first = await h.first_request(sid)
        assert await sipp.wait(10) == 0, sipp.diagnostics() + kam.log()[-3000:]
    assert first.params["DialStatus"] == "answered"
    assert call["Status"] == "2" and call["EndTime"]
    invite = sipp.received("INVITE")[0]
    assert f"127.0.0.1:{kam.port}" in (invite.header("Record-Route") or "")
    routed = [m for m, _ in kam.requests()]
    assert routed[:2] == ["INVITE", "ACK"], kam.log()[-3000:]  # our ACK for the 200 followed the route set
    byes = [src for m, src in kam.requests() if m == "BYE"]
    assert byes == [f"udp:127.0.0.1:{sipp.port}"], kam.log()[-3000:]  # SIPp's BYE came back through it
    assert not sipp.received("BYE")


async def test_call_through_proxy_over_tcp_with_proxy_auth(tmp_path: Path) -> None:
    async with (
        sipp_uas("uas_answer_wait_bye.xml", tmp_path / "sipp", keys={"te": "101"}) as sipp,
        kamailio_proxy(tmp_path / "kam", sipp.port, password="pr0xy") as kam,
    ):
        trunk = f"sip:trunkuser:pr0xy@127.0.0.1:{kam.port};transport=tcp"
        async with start_ringback(tmp_path / "rb", trunk) as h:
            h.app.twiml("/app", "<Response><Say>Through the proxy</Say></Response>")
            sid = await h.make_call("/app")
            call = await h.wait_final(sid)
            first = await h.first_request(sid)
            assert await sipp.wait(10) == 0, sipp.diagnostics() + kam.log()[-3000:]
    assert first.params["DialStatus"] == "answered", kam.log()[-3000:]
    assert call["Status"] == "2" and call["EndTime"]
    reqs = kam.requests()
    methods = [m for m, _ in reqs]
    # challenged once (407, ACKed hop by hop), then the authorised INVITE, ACK and our BYE, all over TCP
    assert methods.count("INVITE") == 2 and "BYE" in methods, reqs
    assert all(src.startswith("tcp:") for _, src in reqs), reqs
    assert "RPL 407" not in kam.log()  # the 407 is the proxy's own, not a relayed reply
    invites = sipp.received("INVITE")
    assert len(invites) == 1 and "Proxy-Authorization" not in invites[0].text  # consumed by the proxy
    assert len(sipp.received("BYE")) == 1  # ringback's BYE reached SIPp through the proxy
