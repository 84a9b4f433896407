"""Engine and session factory for SQLite (default) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from .writer import Writer

T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// too; they mean psycopg 3 here."""
    u = make_url(url)
    if u.drivername in ("postgres", "postgresql"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False, autocheckpoint: bool = True,
                pre_ping: bool = True) -> Engine:
    """A configured Engine. SQLite gets WAL, synchronous=NORMAL and a busy timeout.

    autocheckpoint=False: this engine's commits never run a WAL checkpoint (whose fsyncs take
    10-20 ms on a slow disk); someone else must checkpoint (the writer's checkpoint thread).
    """
    url = normalise_url(url)
    u = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if u.get_backend_name() == "sqlite":
        memory = u.database in (None, "", ":memory:")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if not memory:
            # Every API and engine worker thread may hold a connection at once (anyio runs up to
            # 40): a pool smaller than that opens and throws away connections under load, and
            # each new one pays for its PRAGMAs and WAL set-up.
            kwargs["pool_size"] = 48 if pool_size == 10 else pool_size
            kwargs["max_overflow"] = 16
        if memory:
            from sqlalchemy.pool import StaticPool

            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        from .listing import HintingSQLiteCompiler

        engine.dialect.statement_compiler = HintingSQLiteCompiler  # this engine only: INDEXED BY hints

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Autocommit off in pysqlite's legacy mode breaks BEGIN IMMEDIATE; we issue our own.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            if not autocheckpoint:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the lock up front: a deferred read->write upgrade fails with SQLITE_BUSY
            # under concurrency instead of waiting. Read-only sessions stay deferred (WAL readers).
            if conn.get_execution_options().get("ringback_readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if u.get_backend_name() == "postgresql":
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        kwargs["pool_pre_ping"] = pre_ping
        return create_engine(url, **kwargs)
    return create_engine(url, poolclass=NullPool, **kwargs)


class Store:
    """One database: its Engine, a sessionmaker and the recordings directory."""

    def __init__(self, url: str, *, recordings_dir: str | None = None, migrate: bool = True) -> None:
        self.url = normalise_url(url)
        if migrate:
            from .migrate import upgrade

            upgrade(self.url)
        self.engine = make_engine(self.url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = sessionmaker(
            self.engine.execution_options(ringback_readonly=True), expire_on_commit=False
        )
        self.recordings_dir = recordings_dir
        self._writer: Writer | None = None

    @property
    def writer(self) -> Writer:
        """The group-commit writer thread (started on first use)."""
        if self._writer is None:
            self._writer = Writer(self)
        return self._writer

    async def write(self, fn: Callable[[Session], T]) -> T:
        """Run fn(session) in the writer thread; returns once its transaction has committed.

        Writes arriving together share one transaction and one commit (see writer.py); fn must
        only touch the database through the session, since it may be re-run after a failed commit.
        """
        return await self.writer.run(fn)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: commit on success, roll back on any error.

        readonly=True lets SQLite readers run beside a writer (no write lock taken).
        """
        s = (self.read_sessionmaker if readonly else self.sessionmaker)()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.engine.dispose()
