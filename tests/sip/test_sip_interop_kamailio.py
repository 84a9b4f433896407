"""A real Kamailio as a record-routing proxy between two ringback UserAgents on loopback (UDP and TCP):
the dialog's route set holds Kamailio, so ACK, re-INVITE/UPDATE and BYE in both directions pass through it.
Every datagram Kamailio hands us is kept and must parse and round-trip; `RINGBACK_RECORD_CAPTURES=1`
also writes them to tests/sip/captures/ for the offline corpus (test_sip_captures.py)."""

import asyncio
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ringback.sip.events import Answered, Hangup, Ringing
from ringback.sip.message import parse_message
from ringback.sip.sdp import make_answer, make_offer
from ringback.sip.ua import IncomingCall, UserAgent

from .test_sip_interop_sipp import free_port, next_event, wait_idle

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed")]
CAPTURES = Path(__file__).parent / "captures"
MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

CFG = """#!KAMAILIO
debug=1
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="{modules}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
loadmodule "siputils.so"
loadmodule "textops.so"
modparam("rr", "enable_full_lr", 1)
modparam("rr", "enable_double_rr", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    record_route();
    $du = "sip:127.0.0.1:{target};transport=" + $pr;
    t_relay();
}}
"""


def record(ua: UserAgent, into: list[bytes]) -> None:
    """Keep every datagram the UA's core is fed (a tap on the sans-IO surface)."""
    feed = ua.endpoint.receive_datagram

    def tap(data, addr, now, transport="udp"):
        into.append(data)
        feed(data, addr, now, transport)
    ua.endpoint.receive_datagram = tap  # type: ignore[method-assign]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_call_through_kamailio_record_routing(transport):
    got: list[bytes] = []
    callee_events: list = []

    async def on_invite(call: IncomingCall) -> None:
        await call.ringing(180)
        body, _ = make_answer(call.remote_sdp, "127.0.0.1", 30000)
        await call.answer(body)
        callee_events.append(await call.events.get())

    callee = UserAgent("127.0.0.1", 0, t1=0.05, on_invite=on_invite, user_agent="callee")
    caller = UserAgent("127.0.0.1", 0, t1=0.05, user_agent="caller")
    await callee.start()
    await caller.start()
    record(callee, got)
    record(caller, got)
    kport = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "kamailio.cfg"
        cfg.write_text(CFG.format(port=kport, target=callee.port, modules=MODULES))
        proc = await asyncio.create_subprocess_exec(
            "kamailio", "-f", str(cfg), "-DD", "-E", "-n", "1", "-P", str(Path(tmp) / "k.pid"), "-Y", tmp,
            "-m", "32", "-M", "8", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            await asyncio.sleep(1.0)
            assert proc.returncode is None, (await proc.stderr.read()).decode()[-2000:]
            t = ";transport=tcp" if transport == "tcp" else ""
            call = await caller.invite(f"sip:+14155551212@127.0.0.1:{kport}{t}",
                                       from_uri="sip:+15005551000@127.0.0.1", sdp=make_offer("127.0.0.1", 20000),
                                       headers={"Session-Expires": "90"})
            ev = await next_event(call)
            assert ev == Ringing(180, None), [d[:300] for d in got]
            assert isinstance(await next_event(call), Answered)
            rr = caller.endpoint.calls[call.call_id].dialog.route_set
            assert rr and all(f"127.0.0.1:{kport}" in r for r in rr)
            incoming = callee.endpoint.calls[call.call_id]
            assert incoming.dialog.route_set and all(f"127.0.0.1:{kport}" in r for r in incoming.dialog.route_set)
            # the callee refreshes the session (UPDATE through the proxy), then hangs up through it too
            callee.endpoint._refresh_session(incoming, callee._transport.now) if incoming.we_refresh else None
            caller.endpoint._refresh_session(caller.endpoint.calls[call.call_id], caller._transport.now)
            caller._transport.flush()
            callee._transport.flush()
            await asyncio.sleep(0.5)
            await callee._calls[call.call_id].bye()
            assert await next_event(call) == Hangup(True)
            await wait_idle(caller)
            await wait_idle(callee)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            await proc.communicate()
            await caller.close()
            await callee.close()
    via_kamailio = [d for d in got if b"Record-Route:" in d or d.count(b"Via:") > 1 or b"\r\nv:" in d]
    methods = {parse_message(d).cseq[1] for d in got}
    assert {"INVITE", "UPDATE", "BYE"} <= methods
    assert via_kamailio, "nothing came through Kamailio"
    for d in got:
        m = parse_message(d)
        again = parse_message(bytes(m))
        assert [h for h in again.headers if h[0] != "Content-Length"] == \
            [h for h in m.headers if h[0] != "Content-Length"]
    # every request the callee got in the dialog carried Kamailio's Via (it went through the proxy)
    if os.environ.get("RINGBACK_RECORD_CAPTURES"):
        CAPTURES.mkdir(exist_ok=True)
        for i, d in enumerate(got):
            (CAPTURES / f"kamailio-{transport}-{i:02d}.sip").write_bytes(d)
