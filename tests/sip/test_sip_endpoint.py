"""The sans-IO user agent core on a simulated network: whole calls, virtual time, seeded loss."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringback.sip.endpoint import SipEndpoint
from ringback.sip.events import Answered, Cancelled, Dtmf, Failed, Hangup, IncomingInvite, Ringing, Terminated
from ringback.sip.message import Request, Response, parse_message
from ringback.sip.sdp import make_answer, make_offer
from ringback.sip.simnet import SimNetwork

A = ("127.0.0.1", 5060)
B = ("127.0.0.2", 5070)
T1 = 0.5


def pair(loss: float = 0.0, seed: int = 0, **bkw):
    net = SimNetwork(loss=loss, seed=seed)
    a = net.add(SipEndpoint(*A, t1=T1))
    b = net.add(SipEndpoint(*B, t1=T1, **bkw))
    return net, a, b


def call_events(net, addr):
    return [e for e in net.events[addr] if not isinstance(e, IncomingInvite | Terminated)]


def dial(net, a, **kw):
    return a.invite(f"sip:+14155551212@{B[0]}:{B[1]}", from_uri="sip:+15005551000@127.0.0.1",
                    sdp=make_offer("127.0.0.1", 20000), now=net.now, **kw)


def answering_app(net, b, *, ring=True, code=None, answer_delay=0.0):
    """b behaves like a phone: 180, then answer (or a final `code`)."""
    def on_event(ep, ev):
        if ep is b and isinstance(ev, IncomingInvite):
            if ring:
                b.ringing(ev.call_id, 180, now=net.now)
            if code is not None:
                b.reject(ev.call_id, code, now=net.now)
            elif answer_delay == 0:
                body, _ = make_answer(ev.request.body, B[0], 30000)
                b.answer(ev.call_id, body, now=net.now)
    net.on_event = on_event


def settle(net, a, b):
    net.run(until=net.now + 200)
    assert a.idle and b.idle, (a.calls, a.transactions, b.calls, b.transactions)


def test_answer_then_bye_from_caller():
    net, a, b = pair()
    answering_app(net, b)
    cid = dial(net, a)
    net.run(stop=lambda: any(isinstance(e, Answered) for e in net.events[A]))
    assert call_events(net, A)[0] == Ringing(180, None)
    ans = call_events(net, A)[1]
    assert isinstance(ans, Answered) and b"m=audio 30000 RTP/AVP 0 101" in ans.sdp
    assert a.calls[cid].state == "confirmed"
    net.run(until=net.now + 1)
    assert b.calls[cid].state == "confirmed"  # the ACK arrived
    a.bye(cid, net.now)
    settle(net, a, b)
    assert call_events(net, A)[-1] == Hangup(False)
    assert call_events(net, B) == [Hangup(True)]
    sent = [parse_message(d) for d in net.sent_by(A)]
    assert [m.method for m in sent if isinstance(m, Request)] == ["INVITE", "ACK", "BYE"]
    invite = sent[0]
    assert invite.get("User-Agent") == "ringback" and invite.get("Max-Forwards") == "70"
    assert "rport" in invite.top_via.params and invite.top_via.branch.startswith("z9hG4bK")


def test_bye_from_callee():
    net, a, b = pair()
    answering_app(net, b, ring=False)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    b.bye(cid, net.now)
    settle(net, a, b)
    assert call_events(net, A) == [Answered(call_events(net, A)[0].sdp), Hangup(True)]
    assert call_events(net, B) == [Hangup(False)]


@pytest.mark.parametrize("code", [486, 404, 603, 503])
def test_rejected_call_reports_code_and_acks(code):
    net, a, b = pair()
    answering_app(net, b, code=code)
    dial(net, a)
    settle(net, a, b)
    assert call_events(net, A) == [Ringing(180, None), Failed(code, call_events(net, A)[-1].reason)]
    acks = [m for m in map(parse_message, net.sent_by(A)) if isinstance(m, Request) and m.method == "ACK"]
    assert len(acks) == 1 and acks[0].cseq[1] == "ACK"


def test_no_answer_at_all_times_out_408():
    net = SimNetwork()
    a = net.add(SipEndpoint(*A, t1=T1))
    t0 = net.now
    dial(net, a)  # nobody at B
    net.run()
    assert net.events[A][0] == Failed(408, "Request Timeout")
    assert net.now - t0 == pytest.approx(64 * T1)
    invites = [t for t, src, _, d in net.log if d.startswith(b"INVITE")]
    assert [round(t - t0, 2) for t in invites] == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert a.idle


def test_cancel_while_ringing_gives_487_both_sides():
    net, a, b = pair()
    answering_app(net, b, answer_delay=1)  # rings forever
    cid = dial(net, a)
    net.run(until=net.now + 2)
    a.cancel(cid, net.now)
    settle(net, a, b)
    assert call_events(net, A) == [Ringing(180, None), Failed(487, "Request Terminated")]
    assert call_events(net, B) == [Cancelled()]
    methods = [m.method for m in map(parse_message, net.sent_by(A)) if isinstance(m, Request)]
    assert methods == ["INVITE", "CANCEL", "ACK"]


def test_cancel_before_any_provisional_waits_for_one():
    net = SimNetwork()
    a = net.add(SipEndpoint(*A, t1=T1))
    cid = dial(net, a)
    a.cancel(cid, net.now)
    net.flush()
    assert not any(d.startswith(b"CANCEL") for _, _, _, d in net.log)  # RFC 3261 9.1
    net.run()
    assert net.events[A] == [Failed(487, "Request Terminated"), Terminated(cid)] or \
        net.events[A][0] == Failed(487, "Request Terminated")


def test_200_racing_cancel_is_acked_and_byed():
    net = SimNetwork()
    a = net.add(SipEndpoint(*A, t1=T1))
    cid = dial(net, a)
    net.flush()
    invite = parse_message(net.log[0][3])

    def answer(code, body=b""):
        to = invite.get("To") + ";tag=callee"
        r = Response(code, "X", [("Via", invite.get("Via")), ("From", invite.get("From")), ("To", to),
                                 ("Call-ID", cid), ("CSeq", invite.get("CSeq")),
                                 ("Contact", f"<sip:b@{B[0]}:{B[1]}>")], body)
        net.inject(bytes(r), B, A)

    answer(180)
    net.run(until=net.now + 0.1)
    a.cancel(cid, net.now)
    answer(200, make_offer(B[0], 1))
    net.run(until=net.now + 0.1)
    assert net.events[A][-2:] == [Failed(487, "Request Terminated"), Terminated(cid)]
    to_b = [parse_message(d) for _, src, dst, d in net.log if src == A]
    assert [m.method for m in to_b] == ["INVITE", "CANCEL", "ACK", "BYE"]


def test_digest_challenged_invite():
    net, a, b = pair(credentials={"trunkuser": "s3cret"})
    answering_app(net, b, ring=False)
    cid = dial(net, a, auth=("trunkuser", "s3cret"))
    net.run(until=net.now + 1)
    assert isinstance(call_events(net, A)[0], Answered)
    invites = [m for m in map(parse_message, net.sent_by(A)) if isinstance(m, Request) and m.method == "INVITE"]
    assert len(invites) == 2 and invites[1].get("Authorization", "").startswith("Digest ")
    assert invites[1].cseq[0] == invites[0].cseq[0] + 1
    assert invites[1].top_via.branch != invites[0].top_via.branch
    a.bye(cid, net.now)
    settle(net, a, b)


def test_wrong_password_fails_401_without_looping():
    net, a, b = pair(credentials={"trunkuser": "s3cret"})
    answering_app(net, b, ring=False)
    dial(net, a, auth=("trunkuser", "wrong"))
    settle(net, a, b)
    assert call_events(net, A) == [Failed(401, "Unauthorized")]
    assert call_events(net, B) == []


def test_unauthenticated_invite_is_challenged():
    net, a, b = pair(credentials={"u": "p"})
    answering_app(net, b)
    dial(net, a)
    settle(net, a, b)
    assert call_events(net, A)[0].code == 401


def test_in_dialog_info_dtmf_options_and_reinvite():
    net, a, b = pair()
    answering_app(net, b, ring=False)
    cid = dial(net, a)
    net.run(until=net.now + 1)
    for digit in "1#":
        b.send_info_dtmf(cid, digit, now=net.now)
    net.run(until=net.now + 1)
    assert [e for e in call_events(net, A) if isinstance(e, Dtmf)] == [Dtmf("1", 160), Dtmf("#", 160)]
    # a re-INVITE from the caller (e.g. a session refresh) is answered with the same SDP
    d = a.calls[cid].dialog
    re = d.create_request("INVITE", a._via("udp"), extra=[("Contact", a.contact_for("udp")),
                                                          ("Content-Type", "application/sdp")],
                          body=make_offer("127.0.0.1", 20000))
    a._start_client(re, B, "udp", net.now)
    net.run(until=net.now + 1)
    oks = [m for m in map(parse_message, net.sent_by(B)) if isinstance(m, Response) and m.cseq == (2, "INVITE")
           and m.status >= 200]
    assert oks and oks[0].status == 200 and b"m=audio 30000" in oks[0].body
    assert any(d.startswith(b"ACK") and b"CSeq: 2 ACK" in d for d in net.sent_by(A))
    assert b.calls[cid].ok is None  # the re-INVITE's 200 was ACKed
    opts = d.create_request("OPTIONS", a._via("udp"))
    a._start_client(opts, B, "udp", net.now)
    net.run(until=net.now + 1)
    assert any(isinstance(m, Response) and m.cseq[1] == "OPTIONS" and m.status == 200
               for m in map(parse_message, net.sent_by(B)))
    a.bye(cid, net.now)
    settle(net, a, b)


def test_out_of_dialog_requests():
    net = SimNetwork()
    b = net.add(SipEndpoint(*B, t1=T1))
    base = [("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKo1"), ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"), ("Call-ID", "o1")]
    net.inject(bytes(Request("OPTIONS", "sip:b@h", base + [("CSeq", "1 OPTIONS")])), A, B)
    bye = [(n, v.replace("o1", "o2").replace("z9hG4bKo1", "z9hG4bKo2")) for n, v in base]
    bye = [(n, v + (";tag=zz" if n == "To" else "")) for n, v in bye]
    net.inject(bytes(Request("BYE", "sip:b@h", bye + [("CSeq", "1 BYE")])), A, B)
    net.run()
    codes = {m.cseq[1]: m.status for m in map(parse_message, net.sent_by(B))}
    assert codes == {"OPTIONS": 200, "BYE": 481}
    assert b.idle


def test_rport_and_received_are_stamped_and_used():
    net = SimNetwork()
    b = net.add(SipEndpoint(*B, t1=T1))
    nat = ("198.51.100.7", 40123)
    hdrs = [("Via", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKn1;rport"), ("From", "<sip:a@h>;tag=1"),
            ("To", "<sip:b@h>"), ("Call-ID", "n1"), ("CSeq", "1 OPTIONS")]
    net.inject(bytes(Request("OPTIONS", "sip:b@h", hdrs)), nat, B)
    net.run()
    (t, src, dst, data), = net.log
    assert dst == nat
    via = parse_message(data).top_via
    assert via.params["received"] == nat[0] and via.params["rport"] == str(nat[1])
    assert b.idle


def test_uas_2xx_retransmitted_until_ack_then_gives_up_with_bye():
    net = SimNetwork()
    b = net.add(SipEndpoint(*B, t1=T1))
    inv = Request("INVITE", "sip:b@h", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKr1"), ("From", "<sip:a@h>;tag=1"), ("To", "<sip:b@h>"),
        ("Call-ID", "r1"), ("CSeq", "1 INVITE"), ("Contact", "<sip:a@127.0.0.1:5060>")], make_offer("127.0.0.1", 1))
    net.on_event = lambda ep, ev: isinstance(ev, IncomingInvite) and b.answer(ev.call_id, make_offer(B[0], 2),
                                                                              now=net.now)
    net.inject(bytes(inv), A, B)
    net.run()
    oks = [t for t, _, _, d in net.log if d.startswith(b"SIP/2.0 200")]
    assert len(oks) >= 7  # T1, 2T1, 4T1, then every T2 until 64*T1
    assert any(d.startswith(b"BYE") for _, _, _, d in net.log)
    assert call_events(net, B) == [Hangup(True)]
    assert b.idle


@pytest.mark.parametrize("seed", range(6))
def test_thirty_percent_loss_still_completes_calls(seed):
    net, a, b = pair(loss=0.3, seed=seed)
    answering_app(net, b)
    cid = dial(net, a)
    net.run(stop=lambda: any(isinstance(e, Answered | Failed) for e in net.events[A]))
    assert isinstance(call_events(net, A)[-1], Answered)
    net.run(until=net.now + 5)
    a.bye(cid, net.now)
    net.run(stop=lambda: any(isinstance(e, Hangup) for e in net.events[B]), until=net.now + 100)
    assert call_events(net, B)[-1] == Hangup(True)
    settle(net, a, b)


@pytest.mark.parametrize("seed", range(4))
def test_thirty_percent_loss_busy_and_cancel(seed):
    net, a, b = pair(loss=0.3, seed=100 + seed)
    answering_app(net, b, code=486)
    dial(net, a)
    settle(net, a, b)
    assert call_events(net, A)[-1] == Failed(486, "X") or call_events(net, A)[-1].code == 486

    net, a, b = pair(loss=0.3, seed=200 + seed)
    answering_app(net, b, answer_delay=1)
    cid = dial(net, a)
    net.run(until=net.now + 10)
    a.cancel(cid, net.now)
    settle(net, a, b)
    assert call_events(net, A)[-1].code == 487


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_fuzz_endpoint_never_raises(datagrams):
    ep = SipEndpoint(*B, t1=T1)
    hdr = (b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKq\r\nFrom: <sip:a@h>;tag=1\r\n"
           b"To: <sip:b@h>\r\nCall-ID: q\r\nCSeq: 1 INVITE\r\n")
    for d in datagrams:
        ep.receive_datagram(d, A, 0.0)
        ep.receive_datagram(hdr + d, A, 0.0)
        ep.receive_datagram(hdr.replace(b"INVITE", b"BYE") + d, A, 0.0)
    ep.handle_timer(1e6)
    ep.datagrams_to_send()
