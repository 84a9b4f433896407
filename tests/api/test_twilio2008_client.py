"""The real 2008-era helper library (twilio==2.0.10, untouched) against a running server."""

from __future__ import annotations

import base64 as _base64
import builtins
import hmac as _hmac
import importlib.util
import socket
import sys
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ringback.api import create_app
from ringback.store import Store
from ringback.store.models import Call

VENDOR = Path(__file__).parent / "vendor" / "twilio.py"


class _Request(urllib.request.Request):
    """urllib2.Request that accepts the str bodies Python 2 code builds (item 5 of §6.3)."""

    def __init__(self, url: str, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        super().__init__(url, data, *args, **kwargs)


def load_twilio2008() -> types.ModuleType:
    """Load the vendored file under the name twilio2008 with Python 2 stand-ins in place."""
    urllib2 = types.ModuleType("urllib2")
    urllib2.HTTPErrorProcessor = urllib.request.HTTPErrorProcessor  # type: ignore[attr-defined]
    urllib2.Request = _Request  # type: ignore[attr-defined]
    urllib2.build_opener = urllib.request.build_opener  # type: ignore[attr-defined]
    urllib2.install_opener = urllib.request.install_opener  # type: ignore[attr-defined]
    urllib2.urlopen = urllib.request.urlopen  # type: ignore[attr-defined]
    urllib2.HTTPError = urllib.error.HTTPError  # type: ignore[attr-defined]
    urllib_py2 = types.ModuleType("urllib")
    urllib_py2.urlencode = urllib.parse.urlencode  # type: ignore[attr-defined]
    urllib_py2.quote = urllib.parse.quote  # type: ignore[attr-defined]
    base64_py2 = types.ModuleType("base64")
    base64_py2.encodestring = lambda s: _base64.encodebytes(  # type: ignore[attr-defined]
        s.encode() if isinstance(s, str) else s
    ).decode()
    saved = {name: sys.modules.get(name) for name in ("urllib", "urllib2", "base64")}
    sys.modules.update({"urllib": urllib_py2, "urllib2": urllib2, "base64": base64_py2})
    try:
        spec = importlib.util.spec_from_file_location("twilio2008", VENDOR)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        for name, m in saved.items():
            if m is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = m
    mod.unicode = str  # type: ignore[attr-defined]
    hmac_py2 = types.ModuleType("hmac")
    hmac_py2.new = lambda k, m, d: _hmac.new(  # type: ignore[attr-defined]
        k.encode() if isinstance(k, str) else k, m.encode() if isinstance(m, str) else m, d
    )
    mod.hmac = hmac_py2  # type: ignore[attr-defined]
    assert not hasattr(builtins, "unicode")
    return mod


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(store: Store, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(store, public_url=base, sandbox_trunk=True, recordings_dir=str(tmp_path))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield base
    srv.should_exit = True
    t.join(5)


def test_twilio_2_0_10_drives_the_api(server: str, store: Store, account) -> None:  # type: ignore[no-untyped-def]
    twilio = load_twilio2008()
    assert twilio.__VERSION__ == "2.0.10"
    twilio._TWILIO_API_URL = server
    sid, token, number = account
    acct = twilio.Account(sid, token)
    calls = f"/2008-08-01/Accounts/{sid}/Calls"

    # Make a call (default method: POST with a form body).
    body = acct.request(calls, "POST", {"Caller": number, "Called": "415-555-1212",
                                        "Url": "http://demo.example/hello"})
    assert isinstance(body, bytes) and body.startswith(b'<?xml version="1.0"?>')
    call_sid = ET.fromstring(body).findtext("Call/Sid")
    assert call_sid and call_sid.startswith("CA")

    # List with filters (operator inside the key: 'StartTime>' = '2000-01-01').
    listed = ET.fromstring(acct.request(calls, "GET", {"Called": "4155551212", "Status": "0"}))
    assert [c.findtext("Sid") for c in listed.findall("Calls/Call")] == [call_sid]
    ranged = ET.fromstring(acct.request(calls, "GET", {"StartTime>": "2000-01-01"}))
    assert ranged.find("Calls").get("total") == "0"  # type: ignore[union-attr]

    # Fetch.
    got = ET.fromstring(acct.request(f"{calls}/{call_sid}", "GET"))
    assert got.findtext("Call/Status") == "0" and got.findtext("Call/Flags") == "2"

    # Redirect once the engine has it in progress.
    with store.session() as s:
        row = s.get(Call, call_sid)
        assert row is not None
        row.state, row.status = "running", 1
    red = ET.fromstring(acct.request(f"{calls}/{call_sid}", "POST", {"CurrentUrl": "http://demo.example/next",
                                                                    "CurrentMethod": "GET"}))
    assert red.findtext("Call/Sid") == call_sid
    with store.session(readonly=True) as s:
        assert s.get(Call, call_sid).redirect_url == "http://demo.example/next"  # type: ignore[union-attr]

    # A 400 raises HTTPError whose body is the RestException XML.
    with pytest.raises(urllib.error.HTTPError) as exc:
        acct.request(calls, "POST", {"Caller": number, "Called": "911", "Url": "http://demo.example/hello"})
    assert exc.value.code == 400
    err = ET.fromstring(exc.value.read())
    assert err.findtext("RestException/Code") == "21202"
    assert err.findtext("RestException/Status") == "400"

    # Bad credentials: 401.
    with pytest.raises(urllib.error.HTTPError) as exc:
        twilio.Account(sid, "0" * 32).request(calls, "GET")
    assert exc.value.code == 401
