"""Stores on both backends: SQLite in a temp file and PostgreSQL in a schema of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ringback.store import Store
from tests.support.pg import pg_schema


@pytest.fixture(scope="session", params=["sqlite", "pg"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/store.db"
        return
    with pg_schema("rb_api") as url:
        yield url


@pytest.fixture(scope="session")
def store(store_url: str) -> Iterator[Store]:
    st = Store(store_url)
    yield st
    st.dispose()


class RecordingHooks:
    """ApiHooks that remember what they were told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def on_call_created(self, call_sid: str) -> None:
        self.events.append(("created", call_sid))

    def on_call_redirect(self, call_sid: str) -> None:
        self.events.append(("redirect", call_sid))

    def on_participant_update(self, conference_sid: str, call_sid: str, action: str) -> None:
        self.events.append(("participant", conference_sid, call_sid, action))

    def on_validation_requested(self, validation_sid: str) -> None:
        self.events.append(("validation", validation_sid))


@pytest.fixture
def hooks() -> RecordingHooks:
    return RecordingHooks()


@pytest.fixture
def account(store: Store) -> tuple[str, str]:
    """A fresh account per test (accounts isolate data) owning a fresh 10-digit number."""
    from ringback.store.accounts import add_number, create_account

    sid, token = create_account(store)
    # A random 650 number keeps tests independent on the shared session database.
    number = "650" + str(2000000 + uuid.uuid4().int % 7999999)
    add_number(store, sid, number)
    return sid, token, number  # type: ignore[return-value]


@pytest.fixture
async def client(store: Store, account: tuple[str, str, str], hooks: RecordingHooks, tmp_path):  # type: ignore[no-untyped-def]
    import httpx

    from ringback.api import create_app

    app = create_app(store, public_url="http://testserver", sandbox_trunk=True, recordings_dir=str(tmp_path),
                     hooks=hooks)  # type: ignore[arg-type]
    sid, token, _ = account
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                 auth=(sid, token)) as c:
        yield c
