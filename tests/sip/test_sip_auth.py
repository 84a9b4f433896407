"""Digest authentication: RFC 2617 vectors, client answers and the server verifier."""

from ringback.sip.auth import DigestVerifier, build_authorization, digest_response, parse_challenge


def test_rfc2617_vector():
    assert digest_response(username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
                           method="GET", uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                           qop="auth", nc="00000001", cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"


def test_rfc2069_style_without_qop_differs():
    r = digest_response(username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
                        method="GET", uri="/dir/index.html", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093")
    assert len(r) == 32 and r != "6629fae49393a05397450978507c4ef1"


def test_build_authorization_from_challenge():
    ch = parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                         'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    assert ch["realm"] == "testrealm@host.com" and ch["qop"] == "auth,auth-int"
    value = build_authorization(ch, username="Mufasa", password="Circle Of Life", method="GET",
                                uri="/dir/index.html", cnonce="0a4f113b")
    got = parse_challenge(value)
    assert got["response"] == "6629fae49393a05397450978507c4ef1"
    assert got["nc"] == "00000001" and got["qop"] == "auth" and got["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


def test_verifier_accepts_right_password_only():
    v = DigestVerifier("ringback", {"alice": "secret"}, secret=b"k" * 16)
    ch = parse_challenge(v.challenge(now=1000))
    good = build_authorization(ch, username="alice", password="secret", method="INVITE", uri="sip:x@h")
    bad = build_authorization(ch, username="alice", password="nope", method="INVITE", uri="sip:x@h")
    assert v.verify(good, "INVITE", now=1010) == "alice"
    assert v.verify(bad, "INVITE", now=1010) is None
    assert v.verify(good, "BYE", now=1010) is None  # the method is part of the hash
    assert v.verify(good, "INVITE", now=1000 + 301) is None  # stale nonce
    forged = good.replace(ch["nonce"], ch["nonce"][:-1] + ("0" if ch["nonce"][-1] != "0" else "1"))
    assert v.verify(forged, "INVITE", now=1010) is None
    assert v.verify(None, "INVITE") is None and v.verify("Basic abc", "INVITE") is None
