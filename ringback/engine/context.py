"""What every call task of the engine shares: settings, database, SIP user agent, media engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from ringback.config import Settings
from ringback.engine.trunk import Trunk
from ringback.store.db import Store

if TYPE_CHECKING:
    from ringback.media.engine import MediaEngine
    from ringback.sip.ua import UserAgent

log = logging.getLogger("ringback.engine")
T = TypeVar("T")


@dataclass
class EngineContext:
    settings: Settings
    store: Store
    ua: UserAgent
    media: MediaEngine
    trunk: Trunk
    node_id: str
    fetch_policy: Any = None  # ringback.engine.webhooks.FetchPolicy
    conferences: Any = None  # ringback.engine.conference.Conferences
    # One HTTP client and connection pool for every app request of every call (each call keeps its
    # own cookies in its AppClient).
    http_client: Any = None

    def app_client(self, account_sid: str, auth_token: str) -> Any:
        """The web client for one call's requests to its app (ringback.engine.webhooks.AppClient)."""
        from ringback.engine.webhooks import AppClient

        if self.http_client is None:
            from ringback.engine.webhooks import shared_client

            self.http_client = shared_client()
            # httpx logs every request at INFO: a log line per app request is most of the cost of
            # a short call's logging. Kept when the operator asked for verbose (DEBUG) logs.
            httpx_log = logging.getLogger("httpx")
            if httpx_log.level == logging.NOTSET and logging.getLogger().getEffectiveLevel() > logging.DEBUG:
                httpx_log.setLevel(logging.WARNING)
        return AppClient(account_sid, auth_token, fetch_policy=self.fetch_policy, client=self.http_client)
    # Live calls by CallSid: the running session objects (for live redirect, conference control).
    live: dict[str, Any] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def db(self, fn: Callable[[Session], T], *, readonly: bool = False) -> T:
        """Run fn(session) in one transaction on a worker thread (the store is synchronous).

        Writes go through the store's single group-commit writer: no contention for SQLite's write
        lock or PostgreSQL's hot count rows between engine and API writers. fn may be re-run alone
        if a transaction it shared fails, so side effects outside the session must be idempotent.
        """
        if not readonly:
            return await self.store.write(fn)

        def work() -> T:
            with self.store.session(readonly=readonly) as s:
                return fn(s)

        return await asyncio.to_thread(work)

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        """A task the engine keeps a reference to (so it is not collected) and awaits on shutdown."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)

    @property
    def sip_host(self) -> str:
        return self.settings.sip_advertise or self.ua.host

    def from_uri(self, e164: str) -> str:
        host = self.sip_host
        return f"sip:{e164}@{host}:{self.ua.port}"
