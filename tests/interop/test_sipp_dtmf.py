"""RFC 4733 digits from a real peer: SIPp answers with telephone-event on payload type 101 or 120 and
plays an RTP capture of digit events (written by the test) while the app runs <Gather>."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import start_ringback
from .peers import rfc4733_packets, sipp_uas, write_rtp_pcap

pytestmark = pytest.mark.interop

GATHER = '<Response><Gather action="/got" timeout="5"><Say>Please enter your code</Say></Gather></Response>'


async def _gather_call(h, sipp) -> list:  # type: ignore[no-untyped-def]
    """One call whose app gathers digits, ended Complete; returns the one request to /got."""
    h.app.twiml("/app", GATHER)
    h.app.twiml("/got", "<Response><Hangup/></Response>")
    sid = await h.make_call("/app")
    call = await h.wait_final(sid)
    assert await sipp.wait(10) == 0, sipp.diagnostics()
    assert call["Status"] == "2"
    got = [r for r in h.requests_for(sid) if r.path == "/got"]
    assert len(got) == 1, [r.path for r in h.requests_for(sid)]
    return got


@pytest.mark.parametrize("payload_type", [101, 120])
async def test_rfc4733_digits_reach_gather(tmp_path: Path, payload_type: int) -> None:
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    pcap = workdir / f"digits_{payload_type}.pcap"
    write_rtp_pcap(pcap, rfc4733_packets("4821#", payload_type))
    keys, subst = {"te": str(payload_type)}, {"[pcap]": str(pcap)}
    async with (
        sipp_uas("uas_dtmf.xml", workdir, keys=keys, subst=subst, pause_ms=800) as sipp,
        start_ringback(tmp_path / "rb", f"sip:127.0.0.1:{sipp.port}") as h,
    ):
        got = await _gather_call(h, sipp)
    # Each event is sent as several updates and a triple end packet: each digit counted once.
    assert got[0].params["Digits"] == "4821"
    assert got[0].signature_ok
    # ringback's offer carries 101; SIPp's answer chose `payload_type`, and that is what it sent.
    invite = sipp.received("INVITE")[0]
    assert "telephone-event/8000" in invite.text
    assert len(sipp.received("BYE")) == 1  # /got said <Hangup/>


async def test_sip_info_digits_reach_gather(tmp_path: Path) -> None:
    """Digits sent as SIP INFO (application/dtmf-relay and application/dtmf) drive <Gather>."""
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    async with (
        sipp_uas("uas_info_dtmf.xml", workdir, keys={"te": "101"}, pause_ms=800) as sipp,
        start_ringback(tmp_path / "rb", f"sip:127.0.0.1:{sipp.port}") as h,
    ):
        got = await _gather_call(h, sipp)
    assert got[0].params["Digits"] == "4821"
