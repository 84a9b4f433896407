from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, inspect, select

from ringback.sids import new_sid
from ringback.store import Store, create_notification, create_recording, create_transcription
from ringback.store.accounts import add_caller_id, add_number, bootstrap, create_account
from ringback.store.migrate import upgrade
from ringback.store.models import Call, Count, Notification, Recording, Transcription


def _counts(store: Store, acct: str) -> dict[tuple[str, str], int]:
    """The single-dimension counts (pairs are checked against a rebuild in test_listing.py)."""
    with store.session(readonly=True) as s:
        return {(c.dim, c.value): c.n for c in s.scalars(select(Count).where(Count.account_sid == acct))
                if c.n and c.dim in ("all", "status", "called", "caller", "day")}


def test_migrations_are_idempotent_and_create_tables(store: Store, store_url: str) -> None:
    upgrade(store_url)  # a second run at start-up changes nothing
    names = set(inspect(store.engine).get_table_names())
    assert {"accounts", "calls", "incoming_numbers", "caller_ids", "validation_requests", "recordings",
            "transcriptions", "notifications", "conferences", "participants", "counts"} <= names
    idx = {i["name"] for i in inspect(store.engine).get_indexes("calls")}
    assert {"ix_calls_state_created", "ix_calls_acct_updated", "ix_calls_acct_called"} <= idx


def test_timestamps_are_aware_utc(store: Store) -> None:
    acct, _ = create_account(store)
    sid = new_sid("CA")
    local = datetime(2009, 7, 4, 12, 0, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    with store.session() as s:
        s.add(Call(sid=sid, account_sid=acct, called="4155551212", caller="4158675309", start_time=local))
    with store.session(readonly=True) as s:
        c = s.get(Call, sid)
        assert c is not None and c.start_time is not None
        assert c.start_time.tzinfo is not None and c.start_time.utcoffset() == timedelta(0)
        assert c.start_time == datetime(2009, 7, 4, 12, 0, tzinfo=UTC)
        assert c.date_created.tzinfo is not None


def test_counts_follow_inserts_updates_and_deletes(store: Store) -> None:
    acct, _ = create_account(store)
    sids = [new_sid("CA") for _ in range(3)]
    with store.session() as s:
        for i, sid in enumerate(sids):
            s.add(Call(sid=sid, account_sid=acct, called=f"415555121{i % 2}", caller="4158675309"))
        # A segment never counts: it is not listed in /Calls.
        s.add(Call(sid=new_sid("CA"), account_sid=acct, parent_sid=sids[0], call_segment_sid=new_sid("CA"),
                   called="4155550000", caller="4158675309", flags=6))
    assert _counts(store, acct) == {("all", ""): 3, ("status", "0"): 3, ("called", "4155551210"): 2,
                                    ("called", "4155551211"): 1, ("caller", "4158675309"): 3}
    with store.session() as s:
        c = s.get(Call, sids[0])
        assert c is not None
        c.status, c.state, c.start_time = 1, "dialing", datetime(2009, 7, 4, 23, 59, tzinfo=UTC)
    got = _counts(store, acct)
    assert got[("status", "0")] == 2 and got[("status", "1")] == 1 and got[("day", "2009-07-04")] == 1
    with store.session() as s:
        s.delete(s.get(Call, sids[0]))
    got = _counts(store, acct)
    assert got[("all", "")] == 2 and ("status", "1") not in got and ("day", "2009-07-04") not in got
    with store.session(readonly=True) as s:
        real = s.scalar(select(func.count()).select_from(Call).where(Call.account_sid == acct, Call.parent_sid.is_(None)))
    assert real == got[("all", "")]


def test_engine_record_helpers(store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    acct, _ = create_account(store)
    call = new_sid("CA")
    with store.session() as s:
        n = create_notification(s, acct, call, 0, 11200, "HTTP retrieval failure", request_url="http://x/",
                                request_method="POST", request_variables="a=b\x00", response_body="oops")
        r = create_recording(s, acct, call, 7, str(tmp_path / "r.wav"))
        t = create_transcription(s, acct, r.sid, status="completed", duration=7, text="hello")
    with store.session(readonly=True) as s:
        note = s.get(Notification, n.sid)
        assert note is not None and note.more_info.endswith("/11200") and note.log == 0
        assert s.get(Recording, r.sid).duration == 7  # type: ignore[union-attr]
        assert s.get(Transcription, t.sid).transcription_text == "hello"  # type: ignore[union-attr]


def test_bootstrap_and_cli_helpers(store_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A database of its own: bootstrap looks at "no account yet".
    url = f"sqlite:///{tmp_path}/boot.db" if store_url.startswith("sqlite") else store_url
    st = Store(url)
    try:
        if url.startswith("sqlite"):
            sid, token, created = bootstrap(st, sandbox_trunk=True)
            assert created and len(token) == 32
            assert bootstrap(st, sandbox_trunk=True) == (sid, token, False)
            sid2, _ = create_account(st)
            add_number(st, sid2, "+1 (500) 555-1001")
        given = "AC" + "1" * 32 if url.startswith("sqlite") else new_sid("AC")
        sid3, tok3, created3 = bootstrap(st, sandbox_trunk=False, account_sid=given, auth_token="f" * 32)
        assert (sid3, tok3, created3) == (given, "f" * 32, True)
        cid = add_caller_id(st, sid3, "415-867-5309")
        assert add_caller_id(st, sid3, "(415) 867-5309") == cid  # idempotent
    finally:
        st.dispose()
