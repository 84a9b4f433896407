"""GET /Calls through HTTP equals a naive reference for every filter, combination and page, with
the 2008 query forms (operators inside names, numbers in any format), on both databases."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from ringback.store import Store
from ringback.store.accounts import create_account
from tests.store.test_listing import Row, combos, insert, make_rows, reference

PRETTY = {"4155550001": "(415) 555-0001", "4155550002": "415-555-0002", "4155550003": "1 415 555 0003",
          "+442079460958": "+44 20 7946 0958", "4155551000": "+14155551000", "4155552000": "415.555.2000"}


def query(f: dict[str, Any]) -> str:
    parts = []
    if "called" in f:
        parts.append(f"Called={quote(PRETTY[f['called']])}")
    if "caller" in f:
        parts.append(f"Caller={quote(PRETTY[f['caller']])}")
    if "status" in f:
        parts.append(f"Status={f['status']}")
    lo, hi = f.get("lo"), f.get("hi")
    if lo is not None and hi is not None and hi - lo == timedelta(days=1):
        parts.append(f"StartTime={lo.date().isoformat()}")
    else:
        if lo is not None:
            parts.append(f"StartTime>={lo.date().isoformat()}")
        if hi is not None:
            parts.append(f"StartTime<={(hi - timedelta(days=1)).date().isoformat()}")  # on or before that day
    if "end_lo" in f:
        parts.append(f"EndTime>={f['end_lo'].date().isoformat()}")
    return "&".join(parts)


@pytest.fixture(scope="module")
def seeded(store: Store) -> tuple[str, str, list[Row]]:
    acct, token = create_account(store)
    rows = make_rows(21)[:900]
    insert(store, acct, rows)
    return acct, token, rows


@pytest.fixture
async def http(store: Store, seeded: tuple[str, str, list[Row]], tmp_path):  # type: ignore[no-untyped-def]
    import httpx

    from ringback.api import create_app

    app = create_app(store, public_url="http://testserver", sandbox_trunk=True, recordings_dir=str(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                 auth=(seeded[0], seeded[1])) as c:
        yield c


async def test_list_equals_reference(http, seeded) -> None:  # type: ignore[no-untyped-def]
    acct, _, rows = seeded
    base = f"/2008-08-01/Accounts/{acct}/Calls"
    size = 20
    for f in combos():
        want = reference(rows, f)
        npages = (len(want) + size - 1) // size
        for page in sorted({0, 1, npages // 2, npages - 1, npages} - {-1}):
            r = await http.get(f"{base}?{query(f)}&num={size}&page={page}")
            assert r.status_code == 200, r.text
            calls = ET.fromstring(r.content).find("Calls")
            assert calls is not None
            got = [c.findtext("Sid") for c in calls.findall("Call")]
            assert got == want[page * size:(page + 1) * size], (query(f), page)
            assert calls.get("total") == str(len(want)), query(f)
            assert calls.get("numpages") == str(npages)
            assert calls.get("end") == str(page * size + len(got) - 1)


async def test_contradictory_and_malformed_filters_list_nothing(http, seeded) -> None:  # type: ignore[no-untyped-def]
    acct, _, rows = seeded
    base = f"/2008-08-01/Accounts/{acct}/Calls"
    for q in ("StartTime>=2009-07-05&StartTime<=2009-07-02", "Status=2&Status=3", "Called=4155550001&Called=4155550002",
              "StartTime=2009-13-01", "Status=7", "Called=abc"):
        r = await http.get(f"{base}?{q}")
        assert r.status_code == 200
        calls = ET.fromstring(r.content).find("Calls")
        assert calls is not None and calls.get("total") == "0" and not calls.findall("Call"), q
    # Repeating the same value is the same filter.
    r = await http.get(f"{base}?Status=2&Status=2")
    assert ET.fromstring(r.content).find("Calls").get("total") == str(sum(1 for x in rows if x.status == 2))  # type: ignore[union-attr]
