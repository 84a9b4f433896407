"""Every row of DESIGN.md's "life of a call" table against SIPp as the far end of a REST call.

ringback's sandbox uses ringback's own SIP stack, so a bug on both sides could cancel out; here the
far end is SIPp (sip-tester) driven by the XML scenarios in scenarios/, on loopback.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from .conftest import start_ringback
from .peers import Sipp, sipp_uas

pytestmark = pytest.mark.interop

SAY = "<Response><Say>Hello from ringback</Say></Response>"


async def _call(tmp_path: Path, scenario: str, keys: dict[str, str], *, trunk_user: str = "", pause_ms: int = 500,
                subst: dict[str, str] | None = None,
                path: str = "/app", twiml: str = SAY, **params: str) -> tuple[dict, object, Sipp, int | None, object]:
    """Run one REST call against a SIPp UAS; returns (final call, first request, sipp, SipResponseCode, harness)."""
    keys = {"te": "101", **keys}
    async with (
        sipp_uas(scenario, tmp_path / "sipp", keys=keys, subst=subst, pause_ms=pause_ms) as sipp,
        start_ringback(tmp_path / "rb", f"sip:{trunk_user}127.0.0.1:{sipp.port}") as h,
    ):
        h.app.twiml(path, twiml)
        sid = await h.make_call(path, **params)
        call = await h.wait_final(sid)
        first = await h.first_request(sid)
        rc = await sipp.wait(10)
        assert rc == 0, sipp.diagnostics()
        return call, first, sipp, h.sip_response_code(sid), h


async def test_answer_then_far_end_bye(tmp_path: Path) -> None:
    call, first, sipp, code, _ = await _call(tmp_path, "uas_answer_bye.xml", {}, pause_ms=1500,
                                             twiml='<Response><Pause length="10"/></Response>')
    assert first.params["DialStatus"] == "answered" and first.params["CallStatus"] == "in-progress"
    assert first.signature_ok
    assert call["Status"] == "2"
    assert call["StartTime"] and call["EndTime"]
    assert 1 <= int(call["Duration"]) <= 3  # SIPp held the call 1.5 s after answering
    assert code == 200
    invite = sipp.received("INVITE")[0]
    assert invite.first_line.startswith("INVITE sip:+14155550199@127.0.0.1:")
    assert "sip:+14155550100@" in (invite.header("From") or "")
    assert sipp.received("ACK") and not sipp.received("BYE")  # SIPp hung up, not ringback


async def test_answer_then_ringback_hangs_up(tmp_path: Path) -> None:
    call, first, sipp, code, _ = await _call(tmp_path, "uas_answer_wait_bye.xml", {},
                                             twiml="<Response><Hangup/></Response>")
    assert first.params["DialStatus"] == "answered"
    assert call["Status"] == "2" and call["EndTime"] and call["Duration"] not in ("", None)
    assert code == 200
    assert len(sipp.received("BYE")) == 1


@pytest.mark.parametrize(
    ("code", "reason", "dial_status", "call_status", "status"),
    [
        (486, "Busy Here", "busy", "busy", "3"),
        (600, "Busy Everywhere", "busy", "busy", "3"),
        (603, "Decline", "busy", "busy", "3"),
        (404, "Not Found", "fail", "failed", "4"),
        (503, "Service Unavailable", "fail", "failed", "4"),
        (480, "Temporarily Unavailable", "no-answer", "no-answer", "5"),
        (408, "Request Timeout", "no-answer", "no-answer", "5"),
    ],
)
async def test_final_error_while_ringing(tmp_path: Path, code: int, reason: str, dial_status: str,
                                         call_status: str, status: str) -> None:
    call, first, sipp, sip_code, h = await _call(tmp_path, "uas_reject.xml", {},
                                             subst={"[code] [reason]": f"{code} {reason}"})
    assert first.params["DialStatus"] == dial_status
    assert first.params["CallStatus"] == call_status
    assert call["Status"] == status
    assert call["StartTime"] and not call["EndTime"] and not call["Duration"]
    assert sip_code == code
    assert len(sipp.received("ACK")) == 1  # the non-2xx final response was ACKed (RFC 3261 17.1.1.3)
    assert len(h.requests_for(call["Sid"])) == 1  # reported once; the response is ignored


async def test_ring_until_timeout_then_cancel(tmp_path: Path) -> None:
    call, first, sipp, code, _ = await _call(tmp_path, "uas_ring_cancel.xml", {}, Timeout="2")
    assert first.params["DialStatus"] == "no-answer" and first.params["CallStatus"] == "no-answer"
    assert call["Status"] == "5" and not call["EndTime"]
    assert code == 487
    invite, cancel = sipp.received("INVITE")[0], sipp.received("CANCEL")
    assert len(cancel) == 1
    waited = (cancel[0].when - invite.when).total_seconds()
    assert 1.9 <= waited <= 2.5, waited  # Timeout is counted from the INVITE
    assert cancel[0].header("Call-ID") == invite.header("Call-ID")
    assert sipp.received("ACK")  # the 487 was ACKed


async def test_early_media_183_then_answer(tmp_path: Path) -> None:
    call, first, sipp, code, _ = await _call(tmp_path, "uas_early_media.xml", {}, pause_ms=700,
                                             twiml="<Response><Say>One</Say></Response>")
    assert first.params["DialStatus"] == "answered"
    assert call["Status"] == "2" and code == 200
    assert len(sipp.received("BYE")) == 1


async def test_far_end_hangs_up_during_first_request(tmp_path: Path) -> None:
    async with (
        sipp_uas("uas_answer_bye.xml", tmp_path / "sipp", keys={"te": "101"}, pause_ms=200) as sipp,
        start_ringback(tmp_path / "rb", f"sip:127.0.0.1:{sipp.port}") as h,
    ):
        from starlette.responses import Response

        async def slow(request: object) -> Response:
            await asyncio.sleep(1.0)  # SIPp's BYE arrives while the app is thinking
            return Response(SAY, media_type="text/xml")

        h.app.routes["/slow"] = slow  # type: ignore[assignment]
        sid = await h.make_call("/slow")
        call = await h.wait_final(sid)
        assert await sipp.wait(10) == 0, sipp.diagnostics()
        first = h.requests_for(sid)[0]
        assert first.params["DialStatus"] == "answered"
        assert call["Status"] == "2" and call["EndTime"]
        assert not sipp.received("BYE")  # no BYE of ours after the far end's
        assert h.sip_response_code(sid) == 200


async def test_digest_challenge_answered_with_trunk_credentials(tmp_path: Path) -> None:
    call, first, sipp, code, _ = await _call(
        tmp_path, "uas_auth.xml", {"user": "alice", "password": "s3cret"}, trunk_user="alice:s3cret@",
        twiml="<Response><Hangup/></Response>",
    )
    assert first.params["DialStatus"] == "answered"
    assert call["Status"] == "2" and code == 200
    invites = sipp.received("INVITE")
    assert len(invites) == 2
    auth = invites[1].header("Authorization") or ""
    assert auth.startswith("Digest ") and 'username="alice"' in auth and 'realm="interop"' in auth
    assert not [m for m in sipp.messages() if m.direction == "sent" and m.first_line.startswith("SIP/2.0 403")]


async def test_wrong_trunk_credentials_fail(tmp_path: Path) -> None:
    call, first, sipp, code, _ = await _call(
        tmp_path, "uas_auth.xml", {"user": "alice", "password": "s3cret"}, trunk_user="alice:wrong@",
    )
    assert first.params["DialStatus"] == "fail"
    assert call["Status"] == "4" and code == 403
