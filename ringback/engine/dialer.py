"""Claims queued calls from the database and starts them, paced per account.

Wakes at once when the API commits a new call (`wake()`); a slow poll covers calls queued by
other nodes and the pacing windows. Claims are atomic per row (store/queue.py), so several
nodes can share one PostgreSQL database; there the pacing state lives in the database too
(store/cluster.py), so the rate per account holds across nodes (SQLite serves one node). The
dialer also keeps this node's heartbeat and takes over the calls of nodes that stopped beating.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

from sqlalchemy.orm import Session

from ringback.engine.context import EngineContext
from ringback.engine.notify import add_notification
from ringback.engine.outbound import CallSpec, run_outbound
from ringback.store import cluster, queue
from ringback.store.models import Account

log = logging.getLogger("ringback.dialer")

POLL_SECONDS = 1.0
BATCH = 64
# After a wake-up, wait this long before claiming, so calls created together are claimed in one
# transaction. The API wakes the dialer once per created call: claiming at every wake-up made a
# write transaction per call, each taking the SQLite write turn the API needs too. 5 ms more
# before the INVITE took POST /Calls at 200/s on SQLite from p50 3.7-4.1 / p99 14-55 ms to
# 2.5 / 5-8 ms, and the sustained rate from 329-337 to 358-439 calls/s (bench/api/bench_api.py).
COALESCE = 0.005


class Pacer:
    """Calls per second per account: a token bucket with a burst of one second's worth.

    Times are wall-clock seconds: the bucket state is shared with other nodes through the database.
    """

    def __init__(self, cps: float) -> None:
        self.interval = 1.0 / cps if cps > 0 else 0.0
        self.burst = max(1.0, cps)
        self._next: dict[str, float] = {}

    def allowed(self, account: str, now: float) -> bool:
        return self._next.get(account, 0.0) <= now

    def take(self, account: str, now: float) -> None:
        floor = now - (self.burst - 1) * self.interval
        self._next[account] = max(self._next.get(account, floor), floor) + self.interval

    def next_at(self, account: str) -> float:
        return self._next.get(account, 0.0)

    def load(self, buckets: dict[str, float]) -> None:
        """Adopt the shared state (the database is the authority; other nodes may have dialled)."""
        self._next.update(buckets)

    def copy(self) -> Pacer:
        clone = Pacer.__new__(Pacer)
        clone.interval, clone.burst, clone._next = self.interval, self.burst, dict(self._next)
        return clone

    def blocked(self, now: float) -> tuple[list[str], float | None]:
        """Accounts that must wait, and the earliest moment one may go again."""
        waiting = [a for a, t in self._next.items() if t > now]
        return waiting, (min(self._next[a] for a in waiting) if waiting else None)


class Dialer:
    def __init__(self, ctx: EngineContext, *, cps: float, dead_after: float = 30.0, max_calls: int = 0) -> None:
        self.ctx = ctx
        self.pacer = Pacer(cps)
        # Calls this node carries at once. Beyond it calls wait in the queue, durably, instead of
        # failing for want of an RTP port: an unpaced burst of thousands of queued calls once took
        # every port and failed the rest. By default one call per two ports, since a call may hold
        # two media sessions (a <Dial> leg; the sandbox's phone when it runs in this process).
        self.max_calls = max_calls
        self.live = 0
        self.dead_after = dead_after
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._tokens: dict[str, str] = {}
        # Several nodes share one database only on PostgreSQL (DESIGN.md): on SQLite this node is
        # the only dialler, so its own pacer is the whole truth and the bucket rows (a read and a
        # write per claim round, about a sixth of the engine's CPU per busy call) are skipped.
        self.shared_pacing = ctx.store.dialect == "postgresql"

    def wake(self, *_: object) -> None:
        self._wake.set()

    def room(self) -> int:
        """How many more calls this node may start now."""
        cap = self.max_calls or max(1, self.ctx.media.port_count // 2)
        return cap - self.live

    def _call_done(self, _task: asyncio.Task[None]) -> None:
        self.live -= 1
        self._wake.set()

    async def start(self) -> None:
        await self.recover()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="dialer")
        if self.dead_after > 0:
            # Without the watch this node never beats again: a row written now would go stale and
            # make the other nodes take its live calls over.
            await self.ctx.db(lambda s: cluster.heartbeat(s, self.ctx.node_id))
            self._watch = loop.create_task(self._watch_nodes(), name="node-watch")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def recover(self) -> None:
        """Calls this node left behind in a crash: requeue the undialled, finalise the dialled."""
        requeued, finalised = await self.ctx.db(lambda s: _take_over(s, self.ctx.node_id))
        if requeued or finalised:
            log.warning("recovered after restart: %d calls requeued, %d finalised", requeued, finalised)
            self._wake.set()

    async def _watch_nodes(self) -> None:
        """Heartbeat, and take over the calls of nodes silent for longer than dead_after."""
        beat = max(0.05, self.dead_after / 5)
        while not self._stopping:
            await asyncio.sleep(beat)
            try:
                await self._check_nodes()
            except Exception:
                log.exception("node watch failed")

    async def _check_nodes(self) -> None:
        """One round of the watch: this node's heartbeat, then any takeover."""
        node = self.ctx.node_id
        silent_since = queue.stale_cutoff(self.dead_after)

        def work(s: Session) -> tuple[bool, list[tuple[str, int, int]]]:
            alive = cluster.heartbeat(s, node)
            taken = []
            for dead in cluster.dead_nodes(s, node, silent_since):
                requeued, finalised = _take_over(s, dead)
                cluster.forget_node(s, dead)
                taken.append((dead, requeued, finalised))
            return alive, taken

        alive, taken = await self.ctx.db(work)
        if not alive:
            log.error("this node's heartbeat row was gone: other nodes took it for dead and took its calls over")
        for dead, requeued, finalised in taken:
            log.warning("node %s silent for %.0f s: took over its calls (%d requeued, %d finalised)",
                        dead, self.dead_after, requeued, finalised)
        if any(requeued for _, requeued, _ in taken):
            self._wake.set()

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
            _, next_at = self.pacer.blocked(time.time())
            wait = POLL_SECONDS if next_at is None else min(POLL_SECONDS, max(0.0, next_at - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            if not self._stopping:
                await asyncio.sleep(COALESCE)

    async def _claim_and_start(self) -> int:
        limit = min(BATCH, self.room())
        if limit <= 0:
            return 0  # full: a call's end wakes the dialer
        now = time.time()
        paced, _ = self.pacer.blocked(now)
        # Look before claiming. A claim round is a write transaction: on SQLite it takes the
        # file's one write turn, which POST /Calls waits for; on PostgreSQL it locks rows (the
        # candidates, the pacing buckets), which is WAL written and flushed at commit. The API wakes
        # the dialer once per created call, so with the account paced most rounds found nothing.
        # A plain read takes no lock; the claim reads again under its locks. (The local pacer may
        # be behind other nodes' claims: a peek that says yes then finds nothing, which is safe.)
        if not await self.ctx.db(partial(queue.queued_candidates, limit=1, skip_accounts=paced, lock=False),
                                 readonly=True):
            return 0
        node = self.ctx.node_id
        tokens = self._tokens
        result: dict[str, Pacer] = {}

        def work(s: Session) -> list[CallSpec]:
            # The writer may re-run this alone after a shared transaction failed: pace on a copy
            # and keep it only once the claims have committed.
            pacer = result["pacer"] = self.pacer.copy()
            specs: list[CallSpec] = []
            candidates = queue.queued_candidates(s, limit, skip_accounts=paced)
            # Unpaced (cps 0) needs no shared state; otherwise hold the accounts' buckets in this
            # transaction, and leave out accounts another node is claiming for right now.
            held = (cluster.hold_buckets(s, (a for _, a in candidates))
                    if pacer.interval and self.shared_pacing else None)
            if held is not None:
                pacer.load(held)
            taken: set[str] = set()
            for sid, account in candidates:
                if held is not None and account not in held:
                    continue
                if not pacer.allowed(account, now):
                    continue
                row = queue.claim_row(s, sid, node)
                if row is None:
                    continue
                pacer.take(account, now)
                taken.add(account)
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
            if held is not None:
                cluster.store_buckets(s, {a: pacer.next_at(a) for a in taken})
            return specs

        specs = await self.ctx.db(work)
        self.pacer = result["pacer"]
        for spec in specs:
            self.live += 1
            self.ctx.spawn(run_outbound(self.ctx, spec), name=f"call-{spec.sid}").add_done_callback(self._call_done)
        return len(specs)


def _take_over(s: Session, node_id: str) -> tuple[int, int]:
    """Requeue the calls `node_id` claimed but never dialled; finalise those it had dialled."""
    requeued, dead = queue.recover(s, node_id)
    for call in dead:
        queue.crash_finalize(s, call)
        add_notification(
            s, call.account_sid, call.sid, 12400,
            "Internal failure: the call was live when its ringback node stopped; it was not redialled",
        )
    return requeued, len(dead)
