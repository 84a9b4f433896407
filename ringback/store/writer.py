"""One dedicated writer thread with group commit.

Why: a commit is the expensive part of a small write (an fsync on PostgreSQL, the WAL append and
lock hand-over on SQLite), and many threads each taking SQLite's single write lock (or the same hot
`counts` rows on PostgreSQL) queue up behind each other's commits. Here the writes waiting at one
moment run in a single transaction with a single commit; while it commits, new writes gather
into the next batch, so the batch size follows the load and an idle system commits at once.

Guarantees kept:
  * a job's future completes only after the transaction holding its rows has committed;
  * a job that raises leaves no row: if it raised before writing anything (a rejected request:
    validation reads, then raises) the batch simply goes on without it; if it had written, the
    whole batch is rolled back and each job re-run alone in its own transaction. (No SAVEPOINT per
    job: on PostgreSQL that would be two more round trips for every request.)
  * if the batch's commit itself fails, nothing of it landed, so each job is re-run alone in its
    own transaction (jobs must therefore have no side effects outside the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session, sessionmaker

from ringback.store.hot import HOT_WRITES

if TYPE_CHECKING:
    from .db import Store

log = logging.getLogger("ringback.store.writer")
T = TypeVar("T")
Job = tuple[Callable[[Session], Any], "Future[Any]"]
# An asyncio caller waiting on a job: its loop and the future it awaits.
Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]

# Jobs per transaction. On SQLite a batch holds the write turn the API and engine processes share,
# so a POST waits for the other process's whole batch: 128 jobs could hold it 10-15 ms on a busy
# 2-core host, 32 about a quarter of that, at no loss of rate (bench/api/bench_api.py, SQLite, two
# and three runs: POST p99 13-37 ms and 333-369 calls/s sustained at 128; 14 and 18 ms, 347-475/s
# at 32, the third run's p99 217 ms from one 300 ms stall whose cause was not found).
MAX_BATCH = 32
CHECKPOINT_JOBS = 1000  # writes between WAL checkpoints (a call row and its counts: ~2-4 pages)


class Writer:
    def __init__(self, store: Store, *, max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.max_batch = max_batch
        self._q: queue.SimpleQueue[tuple[Callable[[Session], Any], Future[Any], Waiter | None] | None] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        # Counters for benchmarks and tests: how many jobs shared how many commits.
        self.jobs = 0
        self.commits = 0
        self._engine: Engine | None = None
        self._writes = 0  # DML statements run by the writer thread so far (see _count_writes)
        self._sessionmaker: sessionmaker[Session] | None = None
        self._conn: Connection | None = None  # the writer thread's own, held between batches
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._lock_fd: int | None = None

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    if self._closed:
                        raise RuntimeError("store writer is closed")
                    from .db import make_engine

                    # Its own connection: no pool pre-ping round trip per batch (a broken connection
                    # fails the batch, which is then retried on a fresh one), and on SQLite no WAL
                    # checkpoint inside its commits: that fsync work moves to a thread of its own.
                    main = self.store.engine
                    if main.dialect.name == "sqlite" and main.url.database in (None, "", ":memory:"):
                        self._engine = main  # an in-memory database exists only on the store's one connection
                    else:
                        self._engine = make_engine(self.store.url, pool_size=1, autocheckpoint=False,
                                                   pre_ping=False)
                    self._sessionmaker = sessionmaker(self._engine, expire_on_commit=False)
                    event.listen(self._engine, "before_cursor_execute", self._count_writes)
                    t = threading.Thread(target=self._run, name="ringback-db-writer", daemon=True)
                    t.start()
                    self._thread = t
                    if self._engine.dialect.name == "sqlite" and self._engine.url.database not in (None, "", ":memory:"):
                        self._lock_fd = os.open(f"{self._engine.url.database}-writelock", os.O_RDWR | os.O_CREAT, 0o644)
                        c = threading.Thread(target=self._checkpoint, name="ringback-db-checkpoint", daemon=True)
                        c.start()
                        self._checkpointer = c

    def submit(self, fn: Callable[[Session], T]) -> Future[T]:
        """Queue fn(session); the future resolves after its transaction committed."""
        fut: Future[T] = Future()
        self._ensure_started()
        self._q.put((fn, fut, None))
        return fut

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Await fn(session) committed, from the event loop, without tying up a worker thread.

        The writer wakes each loop once per batch for all its waiters (asyncio.wrap_future would
        write to the loop's self-pipe once per job).
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        fut: Future[T] = Future()
        self._ensure_started()
        self._q.put((fn, fut, (loop, waiter)))
        return await waiter

    def close(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs and stop the thread."""
        with self._lock:
            self._closed = True
            t = self._thread
        if t is not None:
            self._q.put(None)
            t.join(timeout)
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout)
        if t is None or not t.is_alive():
            self._drop_connection()  # the thread is gone: nobody else touches it
        if self._engine is not None and self._engine is not self.store.engine:
            self._engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database beside the writer, not inside its commits.

        PASSIVE never waits for readers or the writer; it does the fsyncs synchronous=NORMAL needs
        at checkpoints, on this thread. Only after CHECKPOINT_JOBS writes, about as often as
        SQLite's own 1000-page autocheckpoint would: each checkpoint fsyncs, and frequent fsyncs
        stall every other write on a busy disk (seen as late INVITEs in the engine's pacing test).
        """
        assert self._engine is not None
        conn = None
        done = 0
        while not self._stop.wait(0.5):
            if self.jobs - done < CHECKPOINT_JOBS:
                continue
            done = self.jobs
            try:
                if conn is None:
                    conn = self.store.engine.raw_connection()
                cur = conn.cursor()
                cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cur.close()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.warning("WAL checkpoint failed", exc_info=True)
                if conn is not None:
                    conn.invalidate()
                    conn = None
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._q.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            live: list[Job] = []
            waiting: dict[asyncio.AbstractEventLoop, list[tuple[Future[Any], asyncio.Future[Any]]]] = {}
            for fn, fut, waiter in batch:
                if waiter is not None and waiter[1].cancelled():
                    fut.cancel()  # its caller is gone (e.g. the client hung up) before it ran
                if fut.set_running_or_notify_cancel():
                    live.append((fn, fut))
                    if waiter is not None:
                        waiting.setdefault(waiter[0], []).append((fut, waiter[1]))
            if live:
                try:
                    self._batch(live)
                except BaseException as exc:  # noqa: BLE001 - the thread must outlive any failure
                    log.exception("writer batch failed")
                    for _, fut in live:
                        if not fut.done():
                            fut.set_exception(exc)
            for loop, pairs in waiting.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(_deliver, pairs)

    def _batch(self, jobs: list[Job]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            assert self._sessionmaker is not None
            with self._turn(), self._session() as s:
                for fn, fut in jobs:
                    writes = self._written(s)
                    try:
                        result = fn(s)
                        s.flush()  # the job's ORM changes reach the database now, counted as its writes
                    except Exception as exc:  # noqa: BLE001 - delivered to the job's caller
                        if self._written(s) != writes or s.new or s.dirty or s.deleted:
                            # It failed after writing: only undoing the whole batch removes its rows.
                            raise _FailedAfterWriting from exc
                        # It failed before writing anything (a rejected request): the batch goes on.
                        outcomes.append((fut, None, exc))
                    else:
                        outcomes.append((fut, result, None))
                s.commit()
        except Exception as exc:  # noqa: BLE001 - nothing committed: retry each job alone
            self._drop_connection()  # it may be broken (a server restart): the retries get a new one
            if len(jobs) == 1:
                if isinstance(exc, _FailedAfterWriting) and exc.__cause__ is not None:
                    raise exc.__cause__ from None  # the job's own error, its writes rolled back
                raise
            if not isinstance(exc, _FailedAfterWriting):
                log.warning("batch of %d writes failed to commit; retrying one by one", len(jobs), exc_info=True)
            for job in jobs:
                try:
                    self._batch([job])
                except Exception as err:  # noqa: BLE001
                    job[1].set_exception(err)
            return
        self.commits += 1
        self.jobs += len(jobs)
        for fut, result, err in outcomes:
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(result)

    def _written(self, s: Session) -> int:
        """Writes run so far: through SQLAlchemy (counted by event) and on the raw cursor (hot.py)."""
        return self._writes + s.info.get(HOT_WRITES, 0)

    def _session(self) -> Session:
        """A session on the writer's own connection, held from batch to batch: checking one out of
        the pool and resetting it on return cost about 60 us per batch, a third of a small write.
        The session begins the transaction and ends it (commit, or rollback when closed)."""
        assert self._engine is not None and self._sessionmaker is not None
        if self._engine is self.store.engine:
            return self._sessionmaker()  # in-memory SQLite: the store's one shared connection
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._drop_connection()
            self._conn = self._engine.connect()
        return Session(bind=self._conn, expire_on_commit=False)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """On SQLite, wait for this process's turn to write in the kernel, not in SQLite.

        The API and the engine are two processes writing one file. SQLite's busy handler waits for
        the lock by sleeping 1, 2, 5 ... up to 100 ms between tries, so a writer that commits again
        and again (the engine dialling hundreds of calls a second) starved the other one: POST /Calls
        waited hundreds of milliseconds for a lock that was free most of the time. An exclusive
        flock on a side file is handed to a waiting process the moment it is released.
        """
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _count_writes(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Anything but a plain read or transaction control counts as a write (conservative).
        if statement.lstrip()[:9].upper().split(" ", 1)[0] not in _READS:
            self._writes += 1


def _deliver(pairs: list[tuple[Future[Any], asyncio.Future[Any]]]) -> None:
    """On the waiters' loop: hand each finished job's outcome to its awaiting coroutine."""
    for fut, waiter in pairs:
        if waiter.done():
            continue
        exc = fut.exception()
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(fut.result())


class _FailedAfterWriting(Exception):
    """A job raised after it had written: its batch must be rolled back as a whole."""


_READS = frozenset({"SELECT", "BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "PRAGMA", "SHOW"})
