"""What real trunks need, on the sans-IO core and a simulated network (virtual time, no sockets):
PRACK (RFC 3262), session timers (RFC 4028), hold/unhold re-INVITEs and UPDATE, SIP INFO digits,
inbound source filtering, an advertised address and NAT fallback, a record-routing proxy in the path,
REGISTER with digest, and bounded tables under a flood."""

import pytest

from ringback.sip.endpoint import SipEndpoint
from ringback.sip.events import (
    Answered,
    Cancelled,
    Dtmf,
    Failed,
    Hangup,
    IncomingInvite,
    MediaChanged,
    Registered,
    RegistrationFailed,
    Ringing,
    Terminated,
    Unregistered,
)
from ringback.sip.message import Request, Response, parse_message
from ringback.sip.sdp import make_answer, make_offer, with_direction
from ringback.sip.simnet import SimNetwork, SimProxy, SimRegistrar

A = ("127.0.0.1", 5060)
B = ("127.0.0.2", 5070)
P = ("127.0.0.3", 5080)
R = ("127.0.0.4", 5090)
T1 = 0.5
TARGET = f"sip:+14155551212@{B[0]}:{B[1]}"


def pair(loss: float = 0.0, seed: int = 0, akw=None, **bkw):
    net = SimNetwork(loss=loss, seed=seed)
    a = net.add(SipEndpoint(*A, t1=T1, **(akw or {})))
    b = net.add(SipEndpoint(*B, t1=T1, **bkw))
    return net, a, b


def evs(net, addr, kind=None):
    out = [e for e in net.events[addr] if not isinstance(e, IncomingInvite | Terminated)]
    return [e for e in out if kind is None or isinstance(e, kind)]


def msgs(net, src, dst=None):
    return [parse_message(d) for _, s, t, d in net.log if s == src and (dst is None or t == dst)]


def requests(net, src, method, dst=None):
    return [m for m in msgs(net, src, dst) if isinstance(m, Request) and m.method == method]


def responses(net, src, method, dst=None):
    return [m for m in msgs(net, src, dst) if isinstance(m, Response) and m.cseq[1] == method]


def dial(net, a, target=TARGET, **kw):
    return a.invite(target, from_uri="sip:+15005551000@127.0.0.1", sdp=make_offer("127.0.0.1", 20000),
                    now=net.now, **kw)


def phone(net, b, *, ring=180, ring_sdp=False, answer_after=None):
    """b rings (reliably if the caller demands it) and answers `answer_after` seconds later (None: at once)."""
    pending: list = []

    def on_event(ep, ev):
        if ep is b and isinstance(ev, IncomingInvite):
            body, _ = make_answer(ev.request.body, B[0], 30000)
            if ring:
                b.ringing(ev.call_id, ring, body if ring_sdp else None, now=net.now)
            if answer_after is None:
                b.answer(ev.call_id, body, now=net.now)
            else:
                pending.append((net.now + answer_after, ev.call_id, body))
    net.on_event = on_event
    return pending


def run_answering(net, b, pending, until):
    """Advance time, answering the calls `phone` deferred when their moment comes."""
    net.flush()
    while net.now < until:
        nxt = min([t for t, _, _ in pending], default=until)
        net.run(until=min(nxt, until, net.now + 0.1))
        for item in [p for p in pending if p[0] <= net.now]:
            pending.remove(item)
            b.answer(item[1], item[2], now=net.now)
        net.flush()


def settle(net, *eps):
    net.run(until=net.now + 300)
    for ep in eps:
        assert ep.idle, (ep.calls, ep.transactions)


# ---------------------------------------------------------------------------------------- PRACK (RFC 3262)

def test_invite_advertises_100rel_and_timer():
    net, a, b = pair()
    phone(net, b)
    dial(net, a)
    net.run(until=net.now + 1)
    inv = requests(net, A, "INVITE")[0]
    assert {s.lower() for s in inv.get_all("Supported")} == {"100rel", "timer"}
    assert "PRACK" in inv.get("Allow")


def test_caller_requiring_100rel_gets_reliable_ringing_and_prack_both_ways():
    net, a, b = pair()
    pending = phone(net, b, ring=183, ring_sdp=True, answer_after=3)
    cid = dial(net, a, headers={"Require": "100rel"})
    run_answering(net, b, pending, net.now + 5)
    ring = [r for r in responses(net, B, "INVITE") if r.status == 183][0]
    assert ring.get("Require") == "100rel" and ring.get("RSeq", "").isdigit()
    prack = requests(net, A, "PRACK")
    assert len(prack) == 1
    assert prack[0].get("RAck") == f"{ring.get('RSeq')} 1 INVITE"
    assert prack[0].to.tag == ring.to.tag and prack[0].cseq == (2, "PRACK")
    assert [r.status for r in responses(net, B, "PRACK")] == [200]
    assert evs(net, A)[:2] == [Ringing(183, ring.body), Answered(evs(net, A)[1].sdp)]
    # the dialog continues past the PRACK's CSeq: the BYE must not reuse 2
    a.bye(cid, net.now)
    settle(net, a, b)
    assert requests(net, A, "BYE")[0].cseq == (3, "BYE")
    assert evs(net, B) == [Hangup(True)]


def test_reliable_ringing_survives_loss_and_is_acknowledged_once():
    for seed in range(5):
        net, a, b = pair(loss=0.3, seed=seed)
        pending = phone(net, b, answer_after=20)
        dial(net, a, headers={"Require": "100rel"})
        run_answering(net, b, pending, net.now + 25)
        assert evs(net, A, Ringing) == [Ringing(180, None)], seed  # retransmissions are not news
        assert b.calls == {} or all(c.rel_pending is None for c in b.calls.values())
        assert isinstance(evs(net, A)[-1], Answered), seed


def test_scripted_uas_reliable_183_retransmission_gets_no_second_prack():
    net = SimNetwork()
    a = net.add(SipEndpoint(*A, t1=T1))
    cid = dial(net, a)
    net.flush()
    inv = requests(net, A, "INVITE")[0]

    def resp(code, extra=(), body=b""):
        hdrs = [("Via", inv.get("Via")), ("From", inv.get("From")), ("To", f"{inv.get('To')};tag=carrier"),
                ("Call-ID", cid), ("CSeq", "1 INVITE"), ("Contact", f"<sip:gw@{B[0]}:{B[1]}>")]
        return bytes(Response(code, "X", hdrs + list(extra), body))

    rel = resp(183, [("Require", "100rel"), ("RSeq", "77")])
    for _ in range(3):
        net.inject(rel, B, A)
        net.run(until=net.now + 0.1)
    pracks = requests(net, A, "PRACK")
    assert len(pracks) == 1 and pracks[0].get("RAck") == "77 1 INVITE"
    assert pracks[0].uri == f"sip:gw@{B[0]}:{B[1]}"
    net.inject(resp(180, [("Require", "100rel"), ("RSeq", "78")]), B, A)
    net.run(until=net.now + 0.1)
    assert [p.get("RAck") for p in requests(net, A, "PRACK")] == ["77 1 INVITE", "78 1 INVITE"]
    assert evs(net, A) == [Ringing(183, None), Ringing(180, None)]


def test_uas_only_supported_100rel_sends_unreliable_ringing():
    net, a, b = pair()
    pending = phone(net, b, answer_after=1)
    dial(net, a)  # Supported: 100rel, not Require
    run_answering(net, b, pending, net.now + 3)
    ring = [r for r in responses(net, B, "INVITE") if r.status == 180][0]
    assert ring.get("RSeq") is None and ring.get("Require") is None
    assert requests(net, A, "PRACK") == []


def test_never_pracked_reliable_ringing_is_given_up_with_500():
    net = SimNetwork()
    b = net.add(SipEndpoint(*B, t1=T1))
    net.on_event = lambda ep, ev: isinstance(ev, IncomingInvite) and b.ringing(ev.call_id, 180, now=net.now)
    inv = Request("INVITE", "sip:b@h", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp1"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>"),
        ("Call-ID", "p1"), ("CSeq", "1 INVITE"), ("Contact", "<sip:a@127.0.0.1:5060>"), ("Require", "100rel")],
        make_offer("127.0.0.1", 1))
    net.inject(bytes(inv), A, B)
    net.run(until=net.now + 100)
    ringing = [t for t, _, _, d in net.log if d.startswith(b"SIP/2.0 180")]
    assert 6 <= len(ringing) <= 8  # T1 doubling for 64*T1
    assert any(d.startswith(b"SIP/2.0 500") for _, _, _, d in net.log)
    assert evs(net, B) == [Cancelled()]
    assert b.idle


# ---------------------------------------------------------------------------------------- session timers

def test_session_timer_caller_refreshes_by_update():
    net, a, b = pair()
    phone(net, b, ring=0)
    cid = dial(net, a, headers={"Session-Expires": "120;refresher=uac"})
    net.run(until=net.now + 1)
    ok = [r for r in responses(net, B, "INVITE") if r.status == 200][0]
    assert ok.get("Session-Expires") == "120;refresher=uac" and ok.get("Require") == "timer"
    assert a.calls[cid].we_refresh and not b.calls[cid].we_refresh
    net.run(until=net.now + 600)
    updates = requests(net, A, "UPDATE")
    assert 9 <= len(updates) <= 11  # every 60 s
    assert all(u.get("Session-Expires") == "120;refresher=uac" for u in updates)
    assert cid in a.calls and cid in b.calls and not evs(net, B, Hangup)
    a.bye(cid, net.now)
    settle(net, a, b)


def test_session_timer_we_refresh_as_uas_when_asked():
    net, a, b = pair()
    phone(net, b, ring=0)
    cid = dial(net, a, headers={"Session-Expires": "100;refresher=uas"})
    net.run(until=net.now + 400)
    assert b.calls[cid].we_refresh
    assert 7 <= len(requests(net, B, "UPDATE")) <= 9  # every 50 s
    assert not evs(net, A, Hangup) and not evs(net, B, Hangup)


def test_session_refresh_by_reinvite_when_peer_lacks_update():
    net, a, b = pair()
    phone(net, b, ring=0)
    cid = dial(net, a, headers={"Session-Expires": "90;refresher=uac"})
    net.run(until=net.now + 1)
    a.calls[cid].peer_allow = "INVITE, ACK, BYE, CANCEL"
    net.run(until=net.now + 100)
    reinv = [r for r in requests(net, A, "INVITE") if r.to.tag]
    assert len(reinv) == 2 and reinv[0].body == a.calls[cid].sent_sdp
    assert len([r for r in requests(net, A, "ACK") if r.cseq[0] > 1]) == 2


def test_session_expiry_without_refresh_sends_bye():
    net, a, b = pair()
    phone(net, b, ring=0)
    cid = dial(net, a, headers={"Session-Expires": "120;refresher=uac"})
    net.run(until=net.now + 1)
    t0 = net.now
    del net.endpoints[A]  # the refresher dies silently
    net.run(until=t0 + 200)
    byes = [(t, d) for t, s, _, d in net.log if s == B and d.startswith(b"BYE")]
    assert byes and 85 <= byes[0][0] - t0 <= 90  # 120 - min(32, 120/3)
    assert evs(net, B) == [Hangup(True)]
    assert cid not in b.calls


def test_too_small_session_interval_gets_422_and_the_caller_retries():
    net, a, b = pair()
    phone(net, b, ring=0)
    dial(net, a, headers={"Session-Expires": "30"})
    net.run(until=net.now + 2)
    codes = [r.status for r in responses(net, B, "INVITE")]
    assert 422 in codes and codes[-1] == 200
    assert [r.get("Session-Expires") for r in requests(net, A, "INVITE")] == ["30", "90"]
    assert isinstance(evs(net, A)[-1], Answered)


# ---------------------------------------------------------------------------------------- hold / unhold

def reinvite(net, a, cid, body, method="INVITE"):
    call = a.calls[cid]
    extra = [("Contact", a.contact_for("udp"))]
    if body:
        extra.append(("Content-Type", "application/sdp"))
    req = call.dialog.create_request(method, a._via("udp"), extra=extra, body=body)
    a._start_client(req, B, "udp", net.now)
    net.run(until=net.now + 1)
    return [r for r in responses(net, B, method) if r.cseq[0] == req.cseq[0] and r.status >= 200][-1]


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_hold_and_unhold_are_answered_with_the_mirror_direction(method):
    net, a, b = pair()
    phone(net, b, ring=0)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    offer = make_offer("127.0.0.1", 20000, session_id=5)
    first = b.calls[cid].sent_sdp
    hold = reinvite(net, a, cid, with_direction(offer, "sendonly"), method)
    assert hold.status == 200 and b"a=recvonly" in hold.body and b"a=sendrecv" not in hold.body
    v0 = first.split(b"\r\n")[1].split()[2]
    v1 = hold.body.split(b"\r\n")[1].split()[2]
    assert int(v1) == int(v0) + 1  # a changed description takes a new o= version (RFC 3264 8)
    assert evs(net, B, MediaChanged)[-1].direction == "sendonly"
    inactive = reinvite(net, a, cid, with_direction(offer, "inactive"), method)
    assert b"a=inactive" in inactive.body
    resume = reinvite(net, a, cid, offer, method)
    assert b"a=sendrecv" in resume.body and int(resume.body.split(b"\r\n")[1].split()[2]) == int(v1) + 2
    same = reinvite(net, a, cid, offer, method)
    assert same.body == resume.body  # nothing changed: same version
    assert [e.direction for e in evs(net, B, MediaChanged)] == ["sendonly", "inactive", "sendrecv"]
    a.bye(cid, net.now)
    settle(net, a, b)


def test_old_style_hold_and_offerless_reinvite_and_bad_offer():
    net, a, b = pair()
    phone(net, b, ring=0)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    zero = make_offer("0.0.0.0", 20000, session_id=5)
    assert b"a=recvonly" in reinvite(net, a, cid, zero).body
    offerless = reinvite(net, a, cid, b"")
    assert offerless.status == 200 and b"a=sendrecv" in offerless.body  # our 2xx makes the offer
    assert reinvite(net, a, cid, b"v=0\r\nm=video 0 RTP/AVP 31\r\n").status == 488
    assert cid in b.calls and not evs(net, B, Hangup)


# ---------------------------------------------------------------------------------------- INFO digits

@pytest.mark.parametrize("ctype,body,digit", [
    ("application/dtmf-relay", b"Signal=5\r\nDuration=250\r\n", Dtmf("5", 250)),
    ("application/dtmf-relay", b"Signal= 11\r\nDuration= 100\r\n", Dtmf("#", 100)),
    ("application/dtmf-relay", b"Signal=*\r\n", Dtmf("*", None)),
    ("application/dtmf", b"7", Dtmf("7", None)),
    ("application/dtmf", b"10\r\n", Dtmf("*", None)),
    ("application/dtmf;charset=utf-8", b"a", Dtmf("A", None)),
])
def test_info_dtmf_bodies(ctype, body, digit):
    net, a, b = pair()
    phone(net, b, ring=0)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    req = a.calls[cid].dialog.create_request("INFO", a._via("udp"), extra=[("Content-Type", ctype)], body=body)
    a._start_client(req, B, "udp", net.now)
    net.run(until=net.now + 1)
    assert evs(net, B, Dtmf) == [digit]
    assert [r.status for r in responses(net, B, "INFO")] == [200]


def test_info_with_junk_gives_no_digit_but_200():
    net, a, b = pair()
    phone(net, b, ring=0)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    for ctype, body in [("application/dtmf-relay", b"Signal=Z\r\n"), ("text/plain", b"5"),
                        ("application/dtmf", b"\xff\xfe")]:
        req = a.calls[cid].dialog.create_request("INFO", a._via("udp"), extra=[("Content-Type", ctype)], body=body)
        a._start_client(req, B, "udp", net.now)
    net.run(until=net.now + 1)
    assert evs(net, B, Dtmf) == []
    assert [r.status for r in responses(net, B, "INFO")] == [200, 200, 200]


# ---------------------------------------------------------------------------------------- inbound security

def test_invite_from_outside_allowed_sources_is_refused_403_without_state():
    net, a, b = pair(allowed_sources=["10.0.0.0/8", "192.0.2.0/24"])
    phone(net, b, ring=0)
    dial(net, a)
    net.run(until=net.now + 1)
    assert [r.status for r in responses(net, B, "INVITE")] == [403]
    assert b.calls == {} and b.transactions == {} and b.stats["refused_source"] == 1
    assert evs(net, A) == [Failed(403, "Forbidden")]
    assert not any(isinstance(e, IncomingInvite) for e in net.events[B])


def test_invite_from_allowed_source_rings_through():
    net, a, b = pair(allowed_sources=["127.0.0.0/30"])
    phone(net, b, ring=0)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    assert isinstance(evs(net, A)[-1], Answered)
    a.bye(cid, net.now)
    settle(net, a, b)


def test_sources_and_credentials_trusted_skip_challenge_others_must_authenticate():
    net, a, b = pair(allowed_sources=["10.0.0.0/8"], credentials={"trunk": "s3cret"})
    phone(net, b, ring=0)
    dial(net, a)  # from 127.0.0.1, no credentials
    net.run(until=net.now + 2)
    assert [r.status for r in responses(net, B, "INVITE")] == [401]
    assert b.transactions == {}  # the challenge kept no state
    dial(net, a, auth=("trunk", "s3cret"))
    net.run(until=net.now + 2)
    assert isinstance(evs(net, A)[-1], Answered)

    net, a, b = pair(allowed_sources=["127.0.0.1/32"], credentials={"trunk": "s3cret"})
    phone(net, b, ring=0)
    dial(net, a)
    net.run(until=net.now + 2)
    assert [r.status for r in responses(net, B, "INVITE")] == [100, 200]


def test_options_from_unknown_source_is_refused():
    net = SimNetwork()
    net.add(SipEndpoint(*B, t1=T1, allowed_sources=["10.0.0.0/8"]))
    hdrs = [("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKs1"), ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"), ("Call-ID", "s1"), ("CSeq", "1 OPTIONS")]
    net.inject(bytes(Request("OPTIONS", "sip:b@h", hdrs)), A, B)
    net.inject(bytes(Request("OPTIONS", "sip:b@h", hdrs)), ("10.1.2.3", 5060), B)
    net.run()
    assert [(d, parse_message(x).status) for _, _, d, x in net.log] == [(A, 403), (("10.1.2.3", 5060), 200)]


# ---------------------------------------------------------------------------------------- advertise / NAT

def test_advertised_address_in_contact_and_via_and_the_call_still_works():
    net, a, b = pair(akw={"advertise": "203.0.113.7:5099"})
    phone(net, b, ring=0)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    inv = requests(net, A, "INVITE")[0]
    assert inv.get("Contact") == "<sip:ringback@203.0.113.7:5099>"
    assert (inv.top_via.host, inv.top_via.port) == ("203.0.113.7", 5099)
    # the far end answers through rport/received to where the INVITE really came from
    assert all(d == A for _, s, d, _ in net.log if s == B)
    assert isinstance(evs(net, A)[-1], Answered)
    ep = SipEndpoint("0.0.0.0", 5060, advertise="2001:db8::5")
    assert ep.contact_for("tcp") == "<sip:ringback@[2001:db8::5]:5060;transport=tcp>"
    a.bye(cid, net.now)
    settle(net, a, b)


@pytest.mark.parametrize("fallback", [True, False])
def test_nat_fallback_sends_in_dialog_requests_to_the_source(fallback):
    # a sits behind NAT: it puts its private address in Contact and Via
    net, a, b = pair(akw={"advertise": "192.168.1.20"}, nat_fallback=fallback)
    phone(net, b, ring=0)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    assert isinstance(evs(net, A)[-1], Answered)
    b.bye(cid, net.now)
    net.run(until=net.now + 1)
    (bye,) = [d for _, s, d, x in net.log if s == B and x.startswith(b"BYE")][:1]
    if fallback:
        assert bye == A
        assert evs(net, A)[-1] == Hangup(True)
    else:
        assert bye == ("192.168.1.20", 5060)


# ---------------------------------------------------------------------------------------- a proxy in the path

def test_record_routing_proxy_stays_in_the_path_both_ways():
    net = SimNetwork()
    a = net.add(SipEndpoint(*A, t1=T1))
    b = net.add(SipEndpoint(*B, t1=T1))
    proxy = net.add(SimProxy(*P, forward_to=B))
    pending = phone(net, b, answer_after=1)
    cid = dial(net, a, target=f"sip:+14155551212@{P[0]}:{P[1]}",
               headers={"Require": "100rel", "Session-Expires": "90;refresher=uac"})
    run_answering(net, b, pending, net.now + 3)
    assert isinstance(evs(net, A)[-1], Answered)
    rr = f"<{proxy.uri}>"
    assert a.calls[cid].dialog.route_set == [rr] and b.calls[cid].dialog.route_set == [rr]
    net.run(until=net.now + 50)  # one session refresh
    b.bye(cid, net.now)
    settle(net, a, b)
    # nothing went around the proxy: every datagram either way touched it
    assert all(P in (s, d) for _, s, d, _ in net.log)
    assert [m for m in proxy.seen if not m[0].isdigit()] == ["INVITE", "PRACK", "ACK", "UPDATE", "BYE"]
    bye = requests(net, B, "BYE")[0]
    assert bye.get("Route") == rr and bye.uri.startswith("sip:ringback@127.0.0.1:5060")
    assert evs(net, A)[-1] == Hangup(True)


def test_strict_router_in_the_route_set():
    net = SimNetwork()
    a = net.add(SipEndpoint(*A, t1=T1))
    b = net.add(SipEndpoint(*B, t1=T1))
    phone(net, b, ring=0)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    d = a.calls[cid].dialog
    d.route_set = [f"<sip:{P[0]}:{P[1]}>"]  # no ;lr: an RFC 2543 strict router
    ruri, routes = d.request_uri_and_routes()
    assert ruri == f"sip:{P[0]}:{P[1]}" and routes[-1] == f"<{d.remote_target}>"


# ---------------------------------------------------------------------------------------- REGISTER

def registrar_pair(**rkw):
    net = SimNetwork()
    a = net.add(SipEndpoint(*A, t1=T1, register_retry=30))
    reg = net.add(SimRegistrar(*R, **rkw))
    return net, a, reg


def test_register_answers_the_challenge_refreshes_and_unregisters():
    net, a, reg = registrar_pair(credentials={"1000": "pw"}, max_expires=600)
    rid = a.register(f"sip:{R[0]}:{R[1]}", f"sip:+15005551000@{R[0]}", auth=("1000", "pw"), expires=3600, now=net.now)
    net.run(until=net.now + 1)
    assert net.events[A] == [Registered(rid, 600)]
    first = reg.requests[:2]
    assert first[0].get("Authorization") is None and first[1].get("Authorization", "").startswith("Digest ")
    assert first[0].uri == f"sip:{R[0]}:{R[1]}" and first[1].cseq[0] == first[0].cseq[0] + 1
    assert first[0].get("Contact") == f"<sip:+15005551000@{A[0]}:{A[1]}>"
    assert reg.bindings[f"sip:+15005551000@{R[0]}"][0] == first[0].get("Contact")
    t0 = net.now
    net.run(until=t0 + 3600)
    refreshes = [r for r in reg.requests[2:] if r.get("Authorization")]
    assert 6 <= len(refreshes) <= 7  # every 540 s (600 granted, a minute to spare)
    assert len({r.call_id for r in reg.requests}) == 1  # one Call-ID, rising CSeq (RFC 3261 10.2.4)
    cseqs = [r.cseq[0] for r in reg.requests]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == len(cseqs)
    a.unregister(rid, net.now)
    net.run(until=net.now + 10)
    assert reg.requests[-1].get("Expires") == "0" and reg.bindings == {}
    assert net.events[A][-1] == Unregistered(rid)
    assert a.idle


def test_register_423_raises_expires_and_dead_registrar_is_retried():
    net, a, reg = registrar_pair(min_expires=1800)
    rid = a.register(f"sip:{R[0]}:{R[1]}", f"sip:1000@{R[0]}", expires=60, now=net.now)
    net.run(until=net.now + 1)
    assert [r.get("Expires") for r in reg.requests] == ["60", "1800"]
    assert net.events[A] == [Registered(rid, 1800)]
    reg.down = True
    net.run(until=net.now + 1800)
    failed = [e for e in net.events[A] if isinstance(e, RegistrationFailed)]
    assert failed and failed[0].code == 408
    reg.down = False
    net.run(until=net.now + 400)
    assert isinstance(net.events[A][-1], Registered) and a.registrations[rid].state == "registered"


def test_wrong_password_fails_without_looping():
    net, a, reg = registrar_pair(credentials={"1000": "pw"})
    rid = a.register(f"sip:{R[0]}:{R[1]}", f"sip:1000@{R[0]}", auth=("1000", "nope"), now=net.now)
    net.run(until=net.now + 5)
    assert net.events[A] == [RegistrationFailed(rid, 401, "No")]
    assert len(reg.requests) == 2


# ---------------------------------------------------------------------------------------- bounded tables

def test_flood_of_distinct_garbage_invites_keeps_tables_bounded():
    ep = SipEndpoint(*B, t1=T1, max_transactions=500, max_calls=100)
    now = 0.0
    for i in range(20_000):
        kind = i % 3
        hdrs = [("Via", f"SIP/2.0/UDP 198.51.100.{i % 250}:5060;branch=z9hG4bKf{i}"), ("From", f"<sip:x@h>;tag={i}"),
                ("To", "<sip:y@h>"), ("Call-ID", f"flood-{i}"), ("CSeq", "1 INVITE")]
        if kind == 0:
            hdrs.append(("Require", "foo"))  # answered 420 statefully
        elif kind == 1:
            hdrs.append(("Max-Forwards", "0"))  # 483
        ep.receive_datagram(bytes(Request("INVITE", "sip:y@h", hdrs)), ("198.51.100.1", 5060), now)
        now += 0.0005
        if i % 100 == 0:
            ep.handle_timer(now)
        ep.datagrams_to_send()
        while ep.next_event() is not None:
            pass
        assert len(ep.transactions) <= 500 and len(ep.calls) <= 100
        assert len(ep._heap) <= 4 * 600 + 1024
    assert ep.stats["overload"] > 0
    ep.handle_timer(now + 1000)
    # what is left is the INVITE transactions of the calls still waiting for an application
    assert len(ep.transactions) == len(ep.calls) == 100
