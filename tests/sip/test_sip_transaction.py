"""Transaction state machines with a fake clock: retransmission schedules and timers (RFC 3261 17)."""

import pytest

from ringback.sip.message import Request, Response, parse_message
from ringback.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    Timeout,
    TimerConfig,
)

CFG = TimerConfig()  # RFC defaults: T1 0.5, T2 4, T4 5
PEER = ("127.0.0.1", 5070)


def req(method: str = "INVITE", branch: str = "z9hG4bKabc") -> Request:
    return Request(method, "sip:b@127.0.0.1:5070", [
        ("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport"), ("Max-Forwards", "70"),
        ("From", "<sip:a@h>;tag=f1"), ("To", "<sip:b@h>"), ("Call-ID", "cid1"), ("CSeq", f"1 {method}"),
    ])


def resp(r: Request, code: int, to_tag: str | None = "t9") -> Response:
    to = r.get("To") + (f";tag={to_tag}" if to_tag else "")
    return Response(code, "X", [("Via", r.get("Via")), ("From", r.get("From")), ("To", to),
                                ("Call-ID", r.call_id), ("CSeq", r.get("CSeq"))])


def run_until(tx, end: float) -> list[float]:
    """Advance the clock timer by timer; return the times something was (re)sent."""
    sent = []
    now = 0.0
    tx.outgoing.clear()
    while (d := tx.next_deadline()) is not None and d <= end:
        now = d
        tx.handle_timer(now)
        if tx.outgoing:
            sent.append(round(now, 3))
            tx.outgoing.clear()
    return sent


def test_invite_client_timer_a_doubles_and_timer_b_times_out():
    tx = ClientInviteTransaction(req(), PEER, "udp", CFG, 0.0)
    assert len(tx.outgoing) == 1
    sent = run_until(tx, 31.9)
    assert sent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A = T1, 2T1, 4T1, ... (no cap for INVITE)
    assert tx.handle_timer(32.0) == [Timeout()]  # B = 64*T1
    assert tx.terminated


def test_invite_client_provisional_stops_retransmission():
    r = req()
    tx = ClientInviteTransaction(r, PEER, "udp", CFG, 0.0)
    assert tx.receive_response(resp(r, 180), 0.1)[0].status == 180
    assert tx.state == "proceeding" and "A" not in tx.deadlines
    assert tx.handle_timer(31.0) == []


def test_invite_client_non_2xx_generates_ack_and_absorbs_retransmissions():
    r = req()
    tx = ClientInviteTransaction(r, PEER, "udp", CFG, 0.0)
    tx.outgoing.clear()
    final = resp(r, 486)
    assert [e.status for e in tx.receive_response(final, 0.2)] == [486]
    assert tx.state == "completed"
    ack = parse_message(tx.outgoing[-1])
    assert ack.method == "ACK" and ack.cseq == (1, "ACK")
    assert ack.top_via.branch == "z9hG4bKabc"  # same branch as the INVITE (17.1.1.3)
    assert ack.to.tag == "t9" and ack.uri == r.uri
    tx.outgoing.clear()
    assert tx.receive_response(final, 0.3) == []  # retransmitted 486: ACK again, not passed up
    assert len(tx.outgoing) == 1
    tx.handle_timer(0.2 + 32.0)  # timer D
    assert tx.terminated


def test_invite_client_2xx_enters_accepted_and_passes_retransmissions_up():
    r = req()
    tx = ClientInviteTransaction(r, PEER, "udp", CFG, 0.0)
    ok = resp(r, 200)
    assert tx.receive_response(ok, 0.1) == [ok]
    assert tx.state == "accepted"
    assert tx.receive_response(ok, 0.6) == [ok]  # the TU must re-ACK
    tx.handle_timer(0.1 + 32)
    assert tx.terminated


def test_invite_client_over_tcp_does_not_retransmit():
    tx = ClientInviteTransaction(req(), PEER, "tcp", CFG, 0.0)
    assert run_until(tx, 31.9) == []
    assert tx.handle_timer(32.0) == [Timeout()]


def test_non_invite_client_timer_e_caps_at_t2_and_f_times_out():
    tx = ClientNonInviteTransaction(req("BYE"), PEER, "udp", CFG, 0.0)
    sent = run_until(tx, 31.9)
    assert sent[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # 0.5, 1, 2, 4, then capped at T2 = 4
    assert all(b - a == pytest.approx(4.0) for a, b in zip(sent[3:], sent[4:], strict=False))
    assert tx.handle_timer(32.0) == [Timeout()]


def test_non_invite_client_timer_k():
    r = req("BYE")
    tx = ClientNonInviteTransaction(r, PEER, "udp", CFG, 0.0)
    assert tx.receive_response(resp(r, 200), 1.0)[0].status == 200
    assert tx.receive_response(resp(r, 200), 1.1) == []
    tx.handle_timer(1.0 + 4.9)
    assert not tx.terminated
    tx.handle_timer(1.0 + 5.0)  # K = T4
    assert tx.terminated


def test_invite_server_timer_g_h_and_ack():
    r = req()
    trying = resp(r, 100, None)
    tx = ServerInviteTransaction(r, PEER, "udp", CFG, 0.0, trying)
    assert parse_message(tx.outgoing[0]).status == 100
    tx.outgoing.clear()
    tx.receive_request(r, 0.1)  # retransmitted INVITE: resend the last response
    assert len(tx.outgoing) == 1
    tx.send_response(resp(r, 486), 1.0)
    sent = run_until(tx, 1.0 + 31.9)
    assert sent[:4] == [1.5, 2.5, 4.5, 8.5]  # G doubles up to T2
    assert tx.handle_timer(33.0) == [Timeout()]  # H = 64*T1: never ACKed

    tx2 = ServerInviteTransaction(r, PEER, "udp", CFG, 0.0, trying)
    tx2.send_response(resp(r, 404), 1.0)
    ack = Request("ACK", r.uri, [(n, v) for n, v in r.headers if n != "CSeq"] + [("CSeq", "1 ACK")])
    tx2.receive_request(ack, 1.2)
    assert tx2.state == "confirmed" and set(tx2.deadlines) == {"I"}
    tx2.handle_timer(1.2 + 5.0)
    assert tx2.terminated


def test_invite_server_2xx_is_left_to_the_tu():
    r = req()
    tx = ServerInviteTransaction(r, PEER, "udp", CFG, 0.0, resp(r, 100, None))
    tx.send_response(resp(r, 200), 0.5)
    assert tx.state == "accepted" and set(tx.deadlines) == {"L"}
    tx.outgoing.clear()
    tx.receive_request(r, 0.6)
    assert tx.outgoing == []  # INVITE retransmissions are absorbed; the TU resends the 2xx


def test_non_invite_server_timer_j():
    r = req("BYE")
    tx = ServerNonInviteTransaction(r, PEER, "udp", CFG, 0.0)
    tx.send_response(resp(r, 200), 0.0)
    tx.outgoing.clear()
    tx.receive_request(r, 1.0)
    assert len(tx.outgoing) == 1
    tx.handle_timer(31.9)
    assert not tx.terminated
    tx.handle_timer(32.0)
    assert tx.terminated
