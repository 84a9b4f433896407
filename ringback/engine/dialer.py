"""Claims queued calls from the database and starts them, paced per account.

Wakes at once when the API commits a new call (`wake()`); a slow poll covers calls queued by
other nodes and the pacing windows. Claims are atomic per row (store/queue.py), so several
nodes can share one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy.orm import Session

from ringback.engine.context import EngineContext
from ringback.engine.notify import add_notification
from ringback.engine.outbound import CallSpec, run_outbound
from ringback.store import queue
from ringback.store.models import Account

log = logging.getLogger("ringback.dialer")

POLL_SECONDS = 1.0
BATCH = 64


class Pacer:
    """Calls per second per account: a token bucket with a burst of one second's worth."""

    def __init__(self, cps: float) -> None:
        self.interval = 1.0 / cps if cps > 0 else 0.0
        self.burst = max(1.0, cps)
        self._next: dict[str, float] = {}

    def allowed(self, account: str, now: float) -> bool:
        return self._next.get(account, 0.0) <= now

    def take(self, account: str, now: float) -> None:
        floor = now - (self.burst - 1) * self.interval
        self._next[account] = max(self._next.get(account, floor), floor) + self.interval

    def copy(self) -> Pacer:
        clone = Pacer.__new__(Pacer)
        clone.interval, clone.burst, clone._next = self.interval, self.burst, dict(self._next)
        return clone

    def blocked(self, now: float) -> tuple[list[str], float | None]:
        """Accounts that must wait, and the earliest moment one may go again."""
        waiting = [a for a, t in self._next.items() if t > now]
        return waiting, (min(self._next[a] for a in waiting) if waiting else None)


class Dialer:
    def __init__(self, ctx: EngineContext, *, cps: float) -> None:
        self.ctx = ctx
        self.pacer = Pacer(cps)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._tokens: dict[str, str] = {}

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.recover()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dialer")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def recover(self) -> None:
        """Calls this node left behind in a crash: requeue the undialled, finalise the dialled."""

        def work(s: Session) -> tuple[int, int]:
            requeued, dead = queue.recover(s, self.ctx.node_id)
            for call in dead:
                queue.crash_finalize(s, call)
                add_notification(
                    s, call.account_sid, call.sid, 12400,
                    "Internal failure: the call was live when ringback stopped; it was not redialled",
                )
            return requeued, len(dead)

        requeued, finalised = await self.ctx.db(work)
        if requeued or finalised:
            log.warning("recovered after restart: %d calls requeued, %d finalised", requeued, finalised)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                started = await self._claim_and_start()
            except Exception:
                log.exception("dialer: claim failed")
                started = 0
                await asyncio.sleep(POLL_SECONDS)
            if started >= BATCH:
                continue
            _, next_at = self.pacer.blocked(time.monotonic())
            wait = POLL_SECONDS if next_at is None else min(POLL_SECONDS, max(0.0, next_at - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _claim_and_start(self) -> int:
        now = time.monotonic()
        paced, _ = self.pacer.blocked(now)
        node = self.ctx.node_id
        tokens = self._tokens
        result: dict[str, Pacer] = {}

        def work(s: Session) -> list[CallSpec]:
            # The writer may re-run this alone after a shared transaction failed: pace on a copy
            # and keep it only once the claims have committed.
            pacer = result["pacer"] = self.pacer.copy()
            specs: list[CallSpec] = []
            for sid, account in queue.queued_candidates(s, BATCH, skip_accounts=paced):
                if not pacer.allowed(account, now):
                    continue
                row = queue.claim_row(s, sid, node)
                if row is None:
                    continue
                pacer.take(account, now)
                token = tokens.get(account)
                if token is None:
                    acct = s.get(Account, account)
                    token = tokens[account] = acct.auth_token if acct else ""
                (c_sid, c_account, caller, called, url, method, send_digits, if_machine, timeout,
                 flags) = row
                specs.append(
                    CallSpec(
                        sid=c_sid, account_sid=c_account, auth_token=token, caller=caller,
                        called=called, url=url or "", method=method or "POST",
                        send_digits=send_digits, if_machine=if_machine, timeout=timeout,
                        flags=flags,
                    )
                )
            return specs

        specs = await self.ctx.db(work)
        self.pacer = result["pacer"]
        for spec in specs:
            self.ctx.spawn(run_outbound(self.ctx, spec), name=f"call-{spec.sid}")
        return len(specs)
