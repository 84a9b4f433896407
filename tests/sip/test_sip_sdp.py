"""SDP offer/answer negotiation."""

import pytest

from ringback.sip.sdp import MediaParams, NoCommonCodec, make_answer, make_offer, parse_answer


def offer(fmts: str, extra: str = "", conn: str = "c=IN IP4 10.1.2.3\r\n") -> bytes:
    return (f"v=0\r\no=peer 1 1 IN IP4 10.1.2.3\r\ns=-\r\n{conn}t=0 0\r\n"
            f"m=audio 4000 RTP/AVP {fmts}\r\n{extra}").encode()


def test_offer_lists_pcmu_pcma_and_dtmf():
    o = make_offer("127.0.0.1", 20000, session_id=7).decode()
    assert "m=audio 20000 RTP/AVP 0 8 101" in o and "a=ptime:20" in o and "a=sendrecv" in o
    assert "c=IN IP4 127.0.0.1" in o and "o=ringback 7 7 IN IP4 127.0.0.1" in o
    assert parse_answer(o.encode()) == MediaParams("127.0.0.1", 20000, 0, 101)


@pytest.mark.parametrize("te", [101, 120, 96])
def test_answer_echoes_peer_telephone_event_pt(te):
    o = offer(f"8 0 {te}", f"a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n")
    body, mp = make_answer(o, "127.0.0.1", 22000)
    assert mp == MediaParams("10.1.2.3", 4000, 8, te)  # the offerer's first choice wins
    text = body.decode()
    assert f"m=audio 22000 RTP/AVP 8 {te}" in text and f"a=rtpmap:{te} telephone-event/8000" in text
    assert parse_answer(body).telephone_event_pt == te


def test_answer_without_telephone_event_and_media_level_c():
    o = offer("0", "c=IN IP4 192.0.2.9\r\na=sendonly\r\n", conn="")
    body, mp = make_answer(o, "127.0.0.1", 22000)
    assert mp.remote_host == "192.0.2.9" and mp.telephone_event_pt is None and mp.direction == "sendonly"
    assert "a=recvonly" in body.decode() and "telephone-event" not in body.decode()


def test_no_common_codec():
    with pytest.raises(NoCommonCodec):
        make_answer(offer("18 3", "a=rtpmap:18 G729/8000\r\n"), "127.0.0.1", 1)
    with pytest.raises(NoCommonCodec):
        make_answer(offer("0").replace(b"m=audio 4000", b"m=audio 0"), "127.0.0.1", 1)  # disabled stream
    with pytest.raises(NoCommonCodec):
        parse_answer(offer("9"))


def test_parse_answer_picks_codec_and_te_120():
    a = offer("0 120", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:120 telephone-event/8000\r\na=ptime:30\r\n")
    assert parse_answer(a) == MediaParams("10.1.2.3", 4000, 0, 120, ptime=30)
