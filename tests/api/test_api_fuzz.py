"""Bad input: hostile requests never cause a 5xx, every 4xx is a RestException with a known code,
and a rejected request changes no row."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from ringback.api import create_app
from ringback.api.errors import KNOWN_CODES
from ringback.store import Store
from ringback.store.models import (
    Account,
    Call,
    CallerId,
    Conference,
    IncomingNumber,
    Notification,
    Participant,
    Recording,
    Transcription,
    ValidationRequest,
)

TABLES = (Account, Call, CallerId, IncomingNumber, Notification, ValidationRequest, Recording, Transcription,
          Conference, Participant)
HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "911", "(415) 555-1212", "+44 20 7946 0958", "http://x/y", "GET", "post", "Hangup",
                     "1234#w", "999", "0", "-1", "1e3", "%00", "\x00", "\ud800".encode("utf-8", "surrogatepass")
                     .decode("latin-1"), "A" * 5000, "<x/>", "' OR 1=1 --", "true", "2009-07-04"]),
)
NAMES = st.one_of(
    st.sampled_from(["Caller", "Called", "Url", "Method", "SendDigits", "IfMachine", "Timeout", "CurrentUrl",
                     "CurrentMethod", "FriendlyName", "PhoneNumber", "CallDelay", "AreaCode", "Muted",
                     "VoiceFallbackUrl", "Status", "StartTime>", "StartTime<", "StartTime", "page", "num",
                     "PageSize", "Log", "MessageDate>", "CallSid"]),
    st.text(max_size=12),
)
RESOURCES = ["", "/Calls", "/Calls/{call}", "/Calls/{call}/Segments", "/Calls/{call}/Recordings",
             "/Calls/{call}/Notifications", "/IncomingPhoneNumbers", "/IncomingPhoneNumbers/Local",
             "/IncomingPhoneNumbers/TollFree", "/IncomingPhoneNumbers/{pn}", "/OutgoingCallerIds",
             "/OutgoingCallerIds/PN0", "/Recordings", "/Recordings/RE0", "/Transcriptions", "/Notifications",
             "/Notifications/NO0", "/Conferences", "/Conferences/CF0/Participants/CA0", "/Nope", "/Calls/x/y/z"]
SUFFIXES = ["", ".xml", ".json", ".csv", ".html", ".mp3", ".txt", ".", ".%00", ".XML"]


def snapshot(store: Store) -> tuple[int, ...]:
    with store.session(readonly=True) as s:
        return tuple(int(s.scalar(select(func.count()).select_from(t)) or 0) for t in TABLES)


def check(resp, store: Store, before: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        ctype = resp.headers.get("content-type", "")
        if "xml" in ctype:
            err = ET.fromstring(resp.content).find("RestException")
            assert err is not None
            code = err.findtext("Code") or ""
            assert (code and int(code) in KNOWN_CODES) or (resp.status_code == 404 and code == "")
            assert err.findtext("Status") == str(resp.status_code)
        elif "json" in ctype:
            err = json.loads(resp.text)["TwilioResponse"]["RestException"]
            assert (err["Code"] and int(err["Code"]) in KNOWN_CODES) or (resp.status_code == 404 and not err["Code"])
        elif "csv" in ctype:
            header, row = list(csv.reader(io.StringIO(resp.text)))[:2]
            assert header == ["Status", "Message", "Code", "MoreInfo"] and row[0] == str(resp.status_code)
            assert (row[2] and int(row[2]) in KNOWN_CODES) or (resp.status_code == 404 and not row[2])
        else:
            assert 'class="rest-exception"' in resp.text
        assert snapshot(store) == before


@pytest.fixture
def fuzz_env(store: Store, account, tmp_path: Path):  # type: ignore[no-untyped-def]
    app = create_app(store, public_url="http://t", sandbox_trunk=True, recordings_dir=str(tmp_path))
    sid, token, number = account
    with TestClient(app, raise_server_exceptions=True) as tc:
        tc.auth = (sid, token)
        created = tc.post(f"/2008-08-01/Accounts/{sid}/Calls",
                          data={"Caller": number, "Called": "4155551212", "Url": "http://a/b"})
        call = ET.fromstring(created.content).findtext("Call/Sid")
        pn = ET.fromstring(tc.get(f"/2008-08-01/Accounts/{sid}/IncomingPhoneNumbers").content).findtext(
            "IncomingPhoneNumbers/IncomingPhoneNumber/Sid")
        yield tc, sid, call, pn


def _fuzz_once(env, store, method, resource, suffix, form, query, auth_kind) -> None:  # type: ignore[no-untyped-def]
    tc, sid, call, pn = env
    path = f"/2008-08-01/Accounts/{sid}" + resource.format(call=call, pn=pn) + suffix
    qs = "&".join(f"{quote(k, safe='<>')}={quote(v, safe='')}" for k, v in query)
    auth = {"good": tc.auth, "none": None, "bad": (sid, "x" * 32)}[auth_kind]
    before = snapshot(store)
    body = "&".join(f"{k}={v}" for k, v in form).encode("utf-8", "surrogatepass")
    resp = tc.request(method, path + ("?" + qs if qs else ""), content=body, auth=auth,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    # Accepted POSTs may add rows; only rejected ones must leave the database alone.
    if resp.status_code >= 400:
        check(resp, store, before)
    else:
        assert resp.status_code < 300


FUZZ_ARGS = dict(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    resource=st.sampled_from(RESOURCES),
    suffix=st.sampled_from(SUFFIXES),
    form=st.lists(st.tuples(NAMES, HOSTILE), max_size=6),
    query=st.lists(st.tuples(NAMES, HOSTILE), max_size=4),
    auth_kind=st.sampled_from(["good", "good", "good", "none", "bad"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**FUZZ_ARGS)
def test_fuzz_requests(fuzz_env, store, method, resource, suffix, form, query, auth_kind) -> None:  # type: ignore[no-untyped-def]
    _fuzz_once(fuzz_env, store, method, resource, suffix, form, query, auth_kind)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**FUZZ_ARGS)
def test_fuzz_requests_long(fuzz_env, store, method, resource, suffix, form, query, auth_kind) -> None:  # type: ignore[no-untyped-def]
    _fuzz_once(fuzz_env, store, method, resource, suffix, form, query, auth_kind)


def test_hostile_headers_and_bodies(fuzz_env, store) -> None:  # type: ignore[no-untyped-def]
    tc, sid, _, _ = fuzz_env
    url = f"/2008-08-01/Accounts/{sid}/Calls"
    before = snapshot(store)
    cases = [
        dict(headers={"Authorization": "Basic !!!"}),
        dict(headers={"Authorization": "Basic " + "A" * 10000}),
        dict(headers={"Authorization": "Bearer x"}),
        dict(headers={"Authorization": "Basic w4nDqA=="}),  # non-ASCII credentials
    ]
    for kw in cases:
        r = tc.get(url, auth=None, **kw)
        assert r.status_code == 401 and b"<Code>20003</Code>" in r.content
    r = tc.post(url, content=b"Caller=\xff\xfe&Called=%ff%fe&Url=http://a/b",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(r, store, before)
    r = tc.post(url, content=b"A=" + b"x" * 200_000, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    check(r, store, before)
    r = tc.post(url, content=b"{\"Caller\": 1}", headers={"Content-Type": "application/json"})
    check(r, store, before)


@pytest.fixture
def live_server(store: Store, tmp_path: Path) -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(store, public_url="http://t", sandbox_trunk=True, recordings_dir=str(tmp_path))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    while not srv.started:
        time.sleep(0.01)
    yield port
    srv.should_exit = True
    t.join(5)


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


@given(junk=st.binary(max_size=400))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_raw_malformed_http(live_server: int, account, junk: bytes) -> None:  # type: ignore[no-untyped-def]
    sid = account[0]
    for data in (junk, b"GET /2008-08-01/Accounts/" + sid.encode() + b"/Calls" + junk + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"POST /2008-08-01/Accounts/" + sid.encode() + b"/Calls HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 5\r\n\r\n" + junk[:5]):
        out = _raw(live_server, data)
        status = out.split(b" ", 2)[1] if out.startswith(b"HTTP/1.1 ") else b""
        assert not status.startswith(b"5"), out[:200]
    # The server is still alive and well.
    ok = _raw(live_server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")
