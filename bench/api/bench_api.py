#!/usr/bin/env python
"""REST API benchmark: server in its own process (uvicorn), load from here over real sockets.

Prints, for each database:
  * POST /Calls at a fixed rate (default 200 req/s): p50/p99 latency, and the bare-Starlette ratio;
  * the maximum sustained creation rate (closed loop, several connections);
  * GET /Calls on a seeded table (default 1,000,000 calls): first 20 pages with and without each
    filter, p99 including total/numpages; deep pages separately.

    python bench/api/bench_api.py                      # SQLite (WAL, synchronous=NORMAL) + PostgreSQL
    python bench/api/bench_api.py --db sqlite --calls 200000
    python bench/api/bench_api.py --server-cmd "ringback serve --http 127.0.0.1:{port} --db {db}"

--server-cmd runs any server (e.g. full `ringback serve`, engine on): {port} and {db} are filled in;
it must serve the same account as given by RINGBACK_ACCOUNT_SID/RINGBACK_AUTH_TOKEN in its environment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

ACCOUNT = "AC" + "b" * 32
TOKEN = "c" * 32
BIG = "AC" + "d" * 32  # the account holding most of the seeded calls
CALLER = "5005551000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER_CODE = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from ringback.api import create_app
from ringback.store import Store
url, port = sys.argv[1], int(sys.argv[2])
store = Store(url)
app = create_app(store, public_url=f"http://127.0.0.1:{port}", sandbox_trunk=True, recordings_dir="/tmp")
async def bare(request):
    return Response(b"<?xml version=\\"1.0\\"?><TwilioResponse/>", media_type="application/xml")
app.router.routes.insert(0, Route("/bare", bare, methods=["GET", "POST"]))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop")
"""


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000 if xs else float("nan")


def seed(url: str, n_calls: int) -> None:
    """Bulk-insert calls (mostly for BIG), then rebuild counts in one pass."""
    from sqlalchemy import text

    from ringback.store import Store
    from ringback.store.accounts import add_number, create_account
    from ringback.store.models import Account, Call, Count

    st = Store(url)
    with st.session() as s:
        have = s.get(Account, ACCOUNT)
    if have is None:
        create_account(st, sid=ACCOUNT, auth_token=TOKEN)
        add_number(st, ACCOUNT, CALLER)
        create_account(st, sid=BIG, auth_token=TOKEN)
    t0 = time.perf_counter()
    dialect = st.dialect
    with st.engine.begin() as conn:
        # Triggers off during the bulk load; counts are rebuilt in one pass afterwards.
        if dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE calls DISABLE TRIGGER calls_counts")
        else:
            for name in ("insert", "update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS calls_counts_{name}")
    base = datetime(2009, 1, 1, tzinfo=UTC)
    batch = 20000
    rnd = random.Random(7)
    cols = Call.__table__
    done = 0
    while done < n_calls:
        rows = []
        for i in range(done, min(n_calls, done + batch)):
            t = base + timedelta(seconds=i * 30)
            status = rnd.choice([2, 2, 2, 3, 4, 5])
            rows.append(dict(sid="CA" + uuid.UUID(int=rnd.getrandbits(128)).hex, account_sid=BIG if i % 20 else ACCOUNT,
                             called=f"415555{rnd.randrange(10000):04d}", caller=CALLER, phone_number_sid=None,
                             status=status, state="ended", flags=2, url="http://x/y", method="POST", timeout=60,
                             start_time=t, end_time=t + timedelta(seconds=40), duration=30, date_created=t,
                             date_updated=t + timedelta(seconds=40)))
        with st.engine.begin() as conn:
            conn.execute(cols.insert(), rows)
        done += len(rows)
    with st.engine.begin() as conn:
        conn.execute(Count.__table__.delete().where(Count.resource == "calls"))
        day = ("to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD')" if dialect == "postgresql"
               else "substr(start_time, 1, 10)")
        for dim, expr in (("all", "''"), ("status", "CAST(status AS TEXT)"), ("called", "called"),
                          ("caller", "caller"), ("day", day)):
            conn.execute(text(
                f"INSERT INTO counts (account_sid, resource, dim, value, n) SELECT account_sid, 'calls', '{dim}', "
                f"{expr}, count(*) FROM calls WHERE parent_sid IS NULL AND (start_time IS NOT NULL OR '{dim}' != 'day')"
                " GROUP BY 1, 4"))
        if dialect == "postgresql":
            conn.exec_driver_sql("ALTER TABLE calls ENABLE TRIGGER calls_counts")
            conn.exec_driver_sql("ANALYZE calls")
        else:
            conn.exec_driver_sql("ANALYZE")
    if dialect == "sqlite":
        # Put the triggers back exactly as the migration made them.
        from ringback.store.migrate import downgrade, upgrade

        downgrade(url, "0001")
        upgrade(url)
    print(f"  seeded {n_calls} calls in {time.perf_counter() - t0:.1f}s", flush=True)
    st.dispose()


async def fixed_rate(client: httpx.AsyncClient, path: str, rate: float, seconds: float, data: dict | None) -> list[float]:
    lat: list[float] = []
    errors = 0
    interval = 1 / rate
    start = time.perf_counter()
    tasks = []

    async def one() -> None:
        nonlocal errors
        t = time.perf_counter()
        r = await (client.post(path, data=data) if data is not None else client.get(path))
        lat.append(time.perf_counter() - t)
        if r.status_code >= 300:
            errors += 1

    for i in range(int(rate * seconds)):
        target = start + i * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    if errors:
        print(f"  !! {errors} errors", flush=True)
    return lat


async def closed_loop(client: httpx.AsyncClient, path: str, data: dict, seconds: float, conc: int) -> float:
    count = 0
    end = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < end:
            r = await client.post(path, data=data)
            if r.status_code < 300:
                count += 1

    await asyncio.gather(*(worker() for _ in range(conc)))
    return count / seconds


async def run_load(port: int, args: argparse.Namespace, label: str) -> None:
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, auth=(ACCOUNT, TOKEN), limits=limits, timeout=30) as c:
        calls = f"/2008-08-01/Accounts/{ACCOUNT}/Calls"
        form = {"Caller": CALLER, "Called": "5005550100", "Url": "http://127.0.0.1:9/app"}
        await fixed_rate(c, "/bare", 100, 1, {})  # warm up
        await fixed_rate(c, calls, 50, 1, form)
        bare = await fixed_rate(c, "/bare", args.rate, args.seconds, {})
        post = await fixed_rate(c, calls, args.rate, args.seconds, form)
        print(f"[{label}] POST /Calls @ {args.rate}/s for {args.seconds}s: p50 {pct(post, 50):.2f} ms, "
              f"p99 {pct(post, 99):.2f} ms | bare Starlette p50 {pct(bare, 50):.2f} ms p99 {pct(bare, 99):.2f} ms"
              f" | ratio p50 {pct(post, 50) / pct(bare, 50):.1f}x", flush=True)
        rate = await closed_loop(c, calls, form, args.seconds, 16)
        print(f"[{label}] max sustained POST /Calls (16 connections, {args.seconds}s): {rate:.0f} calls/s", flush=True)

        big = f"/2008-08-01/Accounts/{BIG}/Calls"
        async with httpx.AsyncClient(base_url=base, auth=(BIG, TOKEN), limits=limits, timeout=30) as cb:
            filters = {"none": "", "Called": "Called=4155550042", "Caller": f"Caller={CALLER}", "Status": "Status=3",
                       "StartTime=": "StartTime=2009-03-01", "StartTime>=": "StartTime>=2009-06-01",
                       "StartTime<=": "StartTime<=2009-03-01"}
            for name, q in filters.items():
                lat: list[float] = []
                for rep in range(args.reps):
                    for page in range(20):
                        t = time.perf_counter()
                        r = await cb.get(f"{big}?{q}&page={page}" if q else f"{big}?page={page}")
                        lat.append(time.perf_counter() - t)
                        assert r.status_code == 200, r.text[:300]
                        if rep == 0 and page == 0:
                            total = r.text.split('total="', 1)[1].split('"', 1)[0]
                print(f"[{label}] GET /Calls first 20 pages, filter {name:<11} (total {total:>7}): "
                      f"p50 {pct(lat, 50):6.2f} ms p99 {pct(lat, 99):6.2f} ms", flush=True)
            lat = []
            for page in (1000, 5000, 10000, 18000):
                t = time.perf_counter()
                r = await cb.get(f"{big}?page={page}")
                lat.append(time.perf_counter() - t)
            print(f"[{label}] GET /Calls deep pages 1000..18000: max {max(lat) * 1000:.1f} ms "
                  f"(OFFSET paging)", flush=True)
            _ = statistics


def start_server(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--server-cmd", default=None, help="custom server command with {port} and {db}")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rb-bench-")
    targets = []
    if args.db in ("sqlite", "both"):
        targets.append(("sqlite WAL synchronous=NORMAL", f"sqlite:///{tmp}/bench.db"))
    if args.db in ("pg", "both"):
        schema = "rb_bench_" + uuid.uuid4().hex[:8]
        import psycopg

        admin = args.pg.replace("+psycopg", "")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        targets.append(("postgresql", f"{args.pg}?options=-csearch_path%3D{schema}"))
    for label, url in targets:
        print(f"== {label}: seeding", flush=True)
        seed(url, args.calls)
        port = free_port()
        env = dict(os.environ, RINGBACK_ACCOUNT_SID=ACCOUNT, RINGBACK_AUTH_TOKEN=TOKEN)
        if args.server_cmd:
            cmd = shlex.split(args.server_cmd.format(port=port, db=url))
        else:
            cmd = [sys.executable, "-c", SERVER_CODE, url, str(port)]
        proc = start_server(cmd, env, port)
        try:
            asyncio.run(run_load(port, args, label))
        finally:
            proc.terminate()
            proc.wait(10)
        if url.startswith("postgresql"):
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
