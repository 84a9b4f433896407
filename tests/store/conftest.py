"""Stores on both backends: SQLite in a temp file and PostgreSQL in a schema of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ringback.store import Store
from tests.support.pg import pg_schema


@pytest.fixture(scope="session", params=["sqlite", "pg"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/store.db"
        return
    with pg_schema("rb_store") as url:
        yield url


@pytest.fixture(scope="session")
def store(store_url: str) -> Iterator[Store]:
    st = Store(store_url)
    yield st
    st.dispose()
