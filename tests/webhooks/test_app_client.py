from __future__ import annotations

import asyncio
import base64
import hashlib
import re

import pytest
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ringback.engine.http_transport import AppTransport
from ringback.engine.webhooks import (
    AppClient,
    FetchPolicy,
    ResponseCache,
    classify,
    shared_client,
    with_query,
)
from ringback.twiml.testapp import AppServer, free_socket

TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT = "AC" + "0" * 32

TWIML = b"<Response><Say>hi</Say></Response>"


def client(**kw: object) -> AppClient:
    kw.setdefault("cache", ResponseCache())
    return AppClient(ACCOUNT, TOKEN, **kw)  # type: ignore[arg-type]


def xml(body: bytes = TWIML, **headers: str) -> Response:
    return Response(body, media_type="text/xml", headers=headers)


async def test_post_form_encoded_and_signed(app_server: AppServer) -> None:
    @app_server.route("/a")
    async def _(r: Request) -> Response:
        return xml()

    async with client() as c:
        res = await c.fetch(app_server.url("/a?x=1"), "POST", {"CallSid": "CA1", "Digits": "12#"})
    assert res.ok and res.kind == "twiml" and res.status == 200 and res.body == TWIML
    seen = app_server.seen[0]
    assert seen.method == "POST"
    assert seen.form == {"CallSid": "CA1", "Digits": "12#"}
    assert seen.query == {"x": "1"}
    assert seen.signature_ok


async def test_get_appends_params_to_existing_query(app_server: AppServer) -> None:
    @app_server.route("/a")
    async def _(r: Request) -> Response:
        return xml()

    async with client() as c:
        res = await c.fetch(app_server.url("/a?x=1"), "GET", {"CallSid": "CA1", "Digits": "1#"})
    assert res.ok
    seen = app_server.seen[0]
    assert seen.method == "GET"
    assert seen.query == {"x": "1", "CallSid": "CA1", "Digits": "1#"}
    assert seen.signature_ok
    assert res.request_url == app_server.url("/a?x=1&CallSid=CA1&Digits=1%23")


def test_with_query() -> None:
    assert with_query("http://h/a", {"a": "1"}) == "http://h/a?a=1"
    assert with_query("http://h/a?", {"a": "1"}) == "http://h/a?a=1"
    assert with_query("http://h/a?b=2#frag", {"a": "1 2"}) == "http://h/a?b=2&a=1+2"


async def test_cookies_kept_per_call_not_across_calls(app_server: AppServer) -> None:
    @app_server.route("/c")
    async def _(r: Request) -> Response:
        n = int(r.cookies.get("n", "0")) + 1
        resp = xml()
        resp.set_cookie("n", str(n))
        return resp

    async with client() as c1:
        await c1.fetch(app_server.url("/c"), "POST", {})
        await c1.fetch(app_server.url("/c"), "POST", {})
    async with client() as c2:
        await c2.fetch(app_server.url("/c"), "POST", {})
    cookies = [s.headers.get("cookie") for s in app_server.seen]
    assert cookies == [None, "n=1", None]


async def test_calls_sharing_one_http_client_keep_their_own_cookies(app_server: AppServer) -> None:
    """The engine shares one httpx client among calls: a cookie set for one call never reaches another."""

    @app_server.route("/c")
    async def _(r: Request) -> Response:
        resp = xml()
        resp.set_cookie("who", r.query_params["who"])
        return resp

    shared = shared_client()
    try:
        c1, c2 = client(client=shared), client(client=shared)
        await c1.fetch(app_server.url("/c"), "GET", {"who": "one"})
        await c2.fetch(app_server.url("/c"), "GET", {"who": "two"})
        await c1.fetch(app_server.url("/c"), "GET", {"who": "one"})
        await c2.fetch(app_server.url("/c"), "GET", {"who": "two"})
        await c1.aclose()  # leaves the shared client open for the other calls
        await c2.fetch(app_server.url("/c"), "GET", {"who": "two"})
    finally:
        await shared.aclose()
    assert [s.headers.get("cookie") for s in app_server.seen] == [None, None, "who=one", "who=two", "who=two"]
    assert not shared.cookies
    # The shared jar is ours, which skips httpx's per-response cookie work (a later httpx that
    # renamed the attribute shared_client sets would fail here, not silently cost CPU again).
    assert type(shared.cookies).__name__ == "_CallCookiesOnly"


async def test_requests_beyond_the_per_origin_cap_wait_their_turn_and_all_complete(app_server: AppServer) -> None:
    inside = 0
    most = 0

    @app_server.route("/slow")
    async def _(r: Request) -> Response:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.05)
        inside -= 1
        return xml()

    gate = AppTransport(per_origin=4)
    shared = shared_client(gate)
    try:
        results = await asyncio.gather(*(client(client=shared).fetch(app_server.url("/slow"), "POST", {})
                                         for _ in range(20)))
    finally:
        await shared.aclose()
    assert all(r.error is None and r.status == 200 for r in results)
    assert most == 4  # never more than the cap at the app at once, and the cap was used
    assert gate.in_flight() == 0  # every slot came back once the bodies were read


@pytest.mark.parametrize("code", [301, 302])
async def test_301_302_followed_as_get(app_server: AppServer, code: int) -> None:
    @app_server.route("/from")
    async def _(r: Request) -> Response:
        return RedirectResponse("/to?y=2", status_code=code)

    @app_server.route("/to")
    async def _to(r: Request) -> Response:
        return xml()

    async with client() as c:
        res = await c.fetch(app_server.url("/from"), "POST", {"CallSid": "CA1"})
    assert res.ok and res.url == app_server.url("/to?y=2")
    assert [(s.method, s.path) for s in app_server.seen] == [("POST", "/from"), ("GET", "/to")]
    assert all(s.signature_ok for s in app_server.seen)


async def test_307_keeps_method_and_body(app_server: AppServer) -> None:
    @app_server.route("/from")
    async def _(r: Request) -> Response:
        return RedirectResponse(app_server.url("/to"), status_code=307)

    @app_server.route("/to")
    async def _to(r: Request) -> Response:
        return xml()

    async with client() as c:
        res = await c.fetch(app_server.url("/from"), "POST", {"CallSid": "CA1"})
    assert res.ok
    assert app_server.seen[1].method == "POST" and app_server.seen[1].form == {"CallSid": "CA1"}
    assert app_server.seen[1].signature_ok


async def test_too_many_redirects_11215(app_server: AppServer) -> None:
    @app_server.route("/loop")
    async def _(r: Request) -> Response:
        return RedirectResponse("/loop", status_code=302)

    async with client(max_redirects=5) as c:
        res = await c.fetch(app_server.url("/loop"), "GET", {})
    assert res.error == 11215
    assert len(app_server.seen) == 6


async def test_etag_revalidation_reuses_body_across_calls(app_server: AppServer) -> None:
    @app_server.route("/e")
    async def _(r: Request) -> Response:
        if r.headers.get("if-none-match") == '"v1"':
            return Response(status_code=304, headers={"ETag": '"v1"'})
        return Response(b"RIFFfake", media_type="audio/wav", headers={"ETag": '"v1"'})

    cache = ResponseCache()
    async with client(cache=cache) as c1:
        first = await c1.fetch(app_server.url("/e"), "GET", {})
    async with client(cache=cache) as c2:
        second = await c2.fetch(app_server.url("/e"), "GET", {})
    assert first.body == second.body == b"RIFFfake"
    assert second.kind == "audio" and second.status == 200 and second.from_cache
    assert not first.from_cache
    assert app_server.seen[1].headers.get("if-none-match") == '"v1"'


async def test_last_modified_revalidation(app_server: AppServer) -> None:
    lm = "Wed, 21 Oct 2015 07:28:00 GMT"

    @app_server.route("/lm")
    async def _(r: Request) -> Response:
        if r.headers.get("if-modified-since") == lm:
            return Response(status_code=304)
        return Response(TWIML, media_type="text/xml", headers={"Last-Modified": lm})

    async with client() as c:
        a = await c.fetch(app_server.url("/lm"), "GET", {})
        b = await c.fetch(app_server.url("/lm"), "GET", {})
    assert a.body == b.body == TWIML and b.from_cache
    assert "if-modified-since" not in app_server.seen[0].headers
    assert app_server.seen[1].headers["if-modified-since"] == lm


async def test_max_age_served_without_request(app_server: AppServer) -> None:
    @app_server.route("/m")
    async def _(r: Request) -> Response:
        return Response(b"x", media_type="audio/wav", headers={"Cache-Control": "max-age=60"})

    async with client() as c:
        await c.fetch(app_server.url("/m"), "GET", {})
        res = await c.fetch(app_server.url("/m"), "GET", {})
    assert res.from_cache and res.body == b"x"
    assert len(app_server.seen) == 1


async def test_changed_etag_replaces_cached_body(app_server: AppServer) -> None:
    version = {"v": 1}

    @app_server.route("/e")
    async def _(r: Request) -> Response:
        tag = f'"v{version["v"]}"'
        if r.headers.get("if-none-match") == tag:
            return Response(status_code=304)
        return Response(tag.encode(), media_type="text/plain", headers={"ETag": tag})

    async with client() as c:
        assert (await c.fetch(app_server.url("/e"), "GET", {})).body == b'"v1"'
        version["v"] = 2
        assert (await c.fetch(app_server.url("/e"), "GET", {})).body == b'"v2"'


async def test_basic_auth_after_challenge(app_server: AppServer) -> None:
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()

    @app_server.route("/p")
    async def _(r: Request) -> Response:
        if r.headers.get("authorization") != expected:
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="app"'})
        return xml()

    url = f"http://alice:s3cret@127.0.0.1:{app_server.port}/p"
    async with client() as c:
        res = await c.fetch(url, "POST", {"CallSid": "CA1"})
    assert res.ok, res.error_message
    assert "authorization" not in app_server.seen[0].headers
    assert app_server.seen[1].headers["authorization"] == expected
    assert app_server.seen[1].form == {"CallSid": "CA1"}
    # The credentials never reach the signed URL.
    assert app_server.seen[1].signature_ok


async def test_wrong_basic_credentials_11200(app_server: AppServer) -> None:
    @app_server.route("/p")
    async def _(r: Request) -> Response:
        return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="app"'})

    async with client() as c:
        res = await c.fetch(f"http://a:b@127.0.0.1:{app_server.port}/p", "GET", {})
    assert res.error == 11200 and res.status == 401
    assert len(app_server.seen) == 2


def _md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


async def test_digest_auth_after_challenge(app_server: AppServer) -> None:
    nonce = "abc123nonce"

    @app_server.route("/d")
    async def _(r: Request) -> Response:
        auth = r.headers.get("authorization", "")
        challenge = Response(status_code=401, headers={
            "WWW-Authenticate": f'Digest realm="app", nonce="{nonce}", qop="auth", algorithm=MD5'})
        if not auth.startswith("Digest "):
            return challenge
        f = dict(re.findall(r'(\w+)="?([^",]+)"?', auth[7:]))
        ha1 = _md5("bob:app:pw")
        ha2 = _md5(f"{r.method}:{f['uri']}")
        want = _md5(f"{ha1}:{nonce}:{f['nc']}:{f['cnonce']}:{f['qop']}:{ha2}")
        return xml() if f.get("response") == want and f["username"] == "bob" else challenge

    async with client() as c:
        res = await c.fetch(f"http://bob:pw@127.0.0.1:{app_server.port}/d?q=1", "GET", {"CallSid": "CA9"})
    assert res.ok, res.error_message
    assert len(app_server.seen) == 2
    assert app_server.seen[1].headers["authorization"].startswith("Digest ")


@pytest.mark.parametrize("status", [404, 500])
async def test_http_error_status_11200(app_server: AppServer, status: int) -> None:
    @app_server.route("/x")
    async def _(r: Request) -> Response:
        return Response("boom", status_code=status, media_type="text/plain")

    async with client() as c:
        res = await c.fetch(app_server.url("/x"), "POST", {"CallSid": "CA1"})
    assert res.error == 11200 and res.status == status and res.body == b"boom"
    assert res.request_params == {"CallSid": "CA1"} and res.request_method == "POST"


async def test_connection_refused_11205() -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    async with client() as c:
        res = await c.fetch(f"http://127.0.0.1:{port}/", "POST", {})
    assert res.error == 11205 and res.status == 0


async def test_read_timeout_11205(app_server: AppServer) -> None:
    @app_server.route("/slow")
    async def _(r: Request) -> Response:
        await asyncio.sleep(0.6)
        return xml()

    async with client(read_timeout=0.1) as c:
        res = await c.fetch(app_server.url("/slow"), "POST", {})
    assert res.error == 11205


async def test_bad_host_name_11210() -> None:
    async with client() as c:
        res = await c.fetch("http://no-such-host.invalid/x", "POST", {})
    assert res.error == 11210


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http:///nohost"])
async def test_invalid_url_11100(url: str) -> None:
    async with client() as c:
        res = await c.fetch(url, "POST", {})
    assert res.error == 11100


async def test_protocol_violation_11206() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"this is not http\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with client() as c:
        res = await c.fetch(f"http://127.0.0.1:{port}/", "GET", {})
    server.close()
    assert res.error == 11206


@pytest.mark.parametrize(
    ("ctype", "body", "kind", "error"),
    [
        ("text/xml; charset=utf-8", TWIML, "twiml", None),
        ("application/xml", TWIML, "twiml", None),
        ("text/html", b"<?xml version='1.0'?>\n<!-- c -->\n<Response/>", "twiml", None),
        ("text/html", b"<html><body>hi</body></html>", "other", 12300),
        ("audio/mpeg", b"ID3", "audio", None),
        ("audio/x-wav", b"RIFF", "audio", None),
        ("text/plain", b"hello there", "text", None),
        ("application/json", b"{}", "other", 12300),
    ],
)
async def test_content_types(app_server: AppServer, ctype: str, body: bytes, kind: str, error: int | None) -> None:
    @app_server.route("/t")
    async def _(r: Request) -> Response:
        return Response(body, headers={"content-type": ctype})

    async with client() as c:
        res = await c.fetch(app_server.url("/t"), "POST", {})
    assert (res.kind, res.error) == (kind, error)


def test_classify_missing_content_type() -> None:
    assert classify("", TWIML) == "other"


async def test_size_cap(app_server: AppServer) -> None:
    @app_server.route("/big")
    async def _(r: Request) -> Response:
        return Response(b"x" * 5000, media_type="audio/wav")

    async with client(max_bytes=4096) as c:
        res = await c.fetch(app_server.url("/big"), "GET", {})
        ok = await c.fetch(app_server.url("/big"), "GET", {}, max_bytes=10_000)
    assert res.error == 11200 and "exceeds" in res.error_message
    assert ok.ok and len(ok.body) == 5000


async def test_fetch_policy_denies_cidr_and_host(app_server: AppServer) -> None:
    @app_server.route("/a")
    async def _(r: Request) -> Response:
        return xml()

    async with client(fetch_policy=FetchPolicy.parse("127.0.0.0/8")) as c:
        res = await c.fetch(app_server.url("/a"), "POST", {})
    assert res.error == 11200 and "denied" in res.error_message
    async with client(fetch_policy=FetchPolicy.parse(["example.com"])) as c:
        res = await c.fetch(app_server.url("/a"), "POST", {})
        denied = await c.fetch("http://api.example.com/", "POST", {})
    assert res.ok
    assert denied.error == 11200
    assert len(app_server.seen) == 1


async def test_fetch_policy_applies_to_redirect_targets(app_server: AppServer) -> None:
    @app_server.route("/r")
    async def _(r: Request) -> Response:
        return RedirectResponse("http://10.1.2.3/x", status_code=302)

    async with client(fetch_policy=FetchPolicy.parse("10.0.0.0/8")) as c:
        res = await c.fetch(app_server.url("/r"), "GET", {})
    assert res.error == 11200 and "denied" in res.error_message


def test_policy_private_ranges() -> None:
    p = FetchPolicy.private()
    assert p.address_denied("192.168.1.1") and p.address_denied("::1") and p.address_denied("::ffff:10.0.0.1")
    assert not p.address_denied("8.8.8.8")
