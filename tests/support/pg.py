"""A PostgreSQL schema of its own for a test or session, on the server at 127.0.0.1:5432 (trust
auth, database `test`), so parallel suites and leftover rows never meet."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def pg_schema(prefix: str) -> Iterator[str]:
    """A SQLAlchemy URL whose search_path is a fresh schema, dropped afterwards (skips without PG)."""
    if not pg_available():
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
