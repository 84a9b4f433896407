#!/usr/bin/env python
"""REST API benchmark: the real `ringback serve` (engine on) in its own process, load from this
process over real sockets with a lean keep-alive HTTP/1.1 client.

Prints, for each database:
  * POST /Calls at a fixed rate (default 200 req/s), latency measured from each request's
    *scheduled* send time (no coordinated omission): p50/p99, and the same for GET /health, a bare
    Starlette endpoint in the same server, measured in the same run (the ratio is printed);
  * the maximum sustained creation rate (closed loop, several connections), and how long the
    engine then took to dial every created call (Called is a sandbox number: 5005550190 busy by
    default, so every call really goes INVITE -> 486 -> report to Url -> final state);
  * GET /Calls on a seeded table (default 1,000,000 calls, 95% in one account): the first 20
    pages with and without each filter, p50/p99 including total/numpages; deep pages separately.

    python bench/api/bench_api.py                         # SQLite (WAL, synchronous=NORMAL) + PostgreSQL
    python bench/api/bench_api.py --db sqlite --calls 200000 --runs 3
    python bench/api/bench_api.py --server-cmd "mycmd --http 127.0.0.1:{port} --db {db}"

The report Url points at a tiny webhook sink run as a third process, so report requests succeed
(a refused connection would add a Notification per call, which is not the steady state).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ACCOUNT = "AC" + "b" * 32
TOKEN = "c" * 32
BIG = "AC" + "d" * 32  # the account holding most of the seeded calls
CALLER = "5005551000"
ROOT = Path(__file__).resolve().parents[2]
# This checkout, not whatever ringback is installed in site-packages.
sys.path.insert(0, str(ROOT))


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_sip_port() -> int:
    """A port free for both UDP and TCP (the SIP user agent listens on both)."""
    while True:
        port = free_port(socket.SOCK_DGRAM)
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def _proc_cpu(pid: int) -> tuple[int, float]:
    """(parent pid, user+system CPU seconds) of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time used so far by the server process and by its children (the engine runs in a child of
    `ringback serve`): a load-independent cost measure, (server, children)."""
    own = _proc_cpu(pid)[1]
    kids = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pid:
            try:
                ppid, cpu = _proc_cpu(int(entry))
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                kids += cpu
    return own, kids


def pct(xs: list[float], p: float) -> float:
    """Percentile in ms (nearest rank)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))] * 1000


# ---------------------------------------------------------------------------- lean HTTP client


class Conn:
    """One keep-alive HTTP/1.1 connection, one request in flight (the load must not be the bottleneck:
    httpx costs about as much CPU per request as the server's whole POST path)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(r, w)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def build(method: str, path: str, auth: tuple[str, str] | None, form: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if auth:
        lines.append("Authorization: Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    body = b""
    if form is not None:
        body = urlencode(form).encode()
        lines.append("Content-Type: application/x-www-form-urlencoded")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Pool:
    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Conn] = []
        self.opened = 0

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        conn = self.idle.pop() if self.idle else None
        if conn is None:
            conn = await Conn.open(self.port)
            self.opened += 1
        try:
            res = await conn.request(raw)
        except (asyncio.IncompleteReadError, ConnectionError):
            # The server closed an idle keep-alive connection (uvicorn: after 5 s): reconnect once.
            conn.close()
            conn = await Conn.open(self.port)
            self.opened += 1
            res = await conn.request(raw)
        self.idle.append(conn)
        return res

    def close(self) -> None:
        for c in self.idle:
            c.close()
        self.idle.clear()


async def fixed_rate(pool: Pool, make: Callable[[int], bytes], rate: float, seconds: float) -> tuple[list[float], int]:
    """Open-loop load: request i is due at start + i/rate; latency counts from when it was due."""
    lat: list[float] = []
    errors = 0
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(due: float, raw: bytes) -> None:
        nonlocal errors
        status, body = await pool.request(raw)
        lat.append(loop.time() - due)
        if status >= 300:
            errors += 1
            if errors <= 3:
                print(f"  !! {status} {body[:200]!r}", flush=True)

    for i in range(int(rate * seconds)):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, make(i))))
    await asyncio.gather(*tasks)
    return lat, errors


async def closed_loop(port: int, make: Callable[[int], bytes], seconds: float, conc: int) -> tuple[float, int]:
    count = 0
    errors = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    seq = iter(range(10**9))

    async def worker() -> None:
        nonlocal count, errors
        conn = await Conn.open(port)
        try:
            while loop.time() < end:
                status, _ = await conn.request(make(next(seq)))
                if status < 300:
                    count += 1
                else:
                    errors += 1
        finally:
            conn.close()

    t0 = loop.time()
    await asyncio.gather(*(worker() for _ in range(conc)))
    return count / (loop.time() - t0), errors


# The API alone (no engine: nothing dials), to separate the API's cost from the engine's.
API_ONLY = """
import sys, uvicorn
from ringback.api import create_app
from ringback.store import Store
from ringback.store.accounts import bootstrap
url, port = sys.argv[1], int(sys.argv[2])
store = Store(url)
bootstrap(store, sandbox_trunk=True, account_sid="ACCOUNT", auth_token="TOKEN")
app = create_app(store, public_url=f"http://127.0.0.1:{port}", sandbox_trunk=True, recordings_dir="/tmp")
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
""".replace("ACCOUNT", ACCOUNT).replace("TOKEN", TOKEN)


# ---------------------------------------------------------------------------- webhook sink


def run_sink(port: int) -> None:
    """Answer every request 200 with an empty TwiML document (the report Url of the created calls)."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 11\r\n\r\n<Response/>"

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        n = int(line[15:])
                if n:
                    await r.readexactly(n)
                w.write(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            w.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------------------- seeding


def seed(url: str, n_calls: int) -> None:
    """Bulk Core inserts of calls (95% for BIG), then the counts table rebuilt to match exactly."""
    from ringback.store import Store
    from ringback.store.accounts import add_number, create_account
    from ringback.store.counts import rebuild_counts, triggers_disabled
    from ringback.store.models import Account, Call

    st = Store(url)
    with st.session() as s:
        have = s.get(Account, ACCOUNT)
    if have is None:
        create_account(st, sid=ACCOUNT, auth_token=TOKEN)
        add_number(st, ACCOUNT, CALLER)
        create_account(st, sid=BIG, auth_token=TOKEN)
    t0 = time.perf_counter()
    base = datetime(2009, 1, 1, tzinfo=UTC)
    batch = 20000
    rnd = random.Random(7)
    table = Call.__table__
    done = 0
    with triggers_disabled(st):
        while done < n_calls:
            rows = []
            for i in range(done, min(n_calls, done + batch)):
                t = base + timedelta(seconds=i * 30)
                rows.append(dict(sid="CA" + uuid.UUID(int=rnd.getrandbits(128)).hex,
                                 account_sid=BIG if i % 20 else ACCOUNT,
                                 called=f"415555{rnd.randrange(10000):04d}", caller=CALLER, phone_number_sid=None,
                                 status=rnd.choice([2, 2, 2, 3, 4, 5]), state="ended", flags=2, url="http://x/y",
                                 method="POST", timeout=60, start_time=t, end_time=t + timedelta(seconds=40),
                                 duration=30, date_created=t, date_updated=t + timedelta(seconds=40)))
            with st.engine.begin() as conn:
                conn.execute(table.insert(), rows)
            done += len(rows)
    rebuild_counts(st)
    if st.dialect == "postgresql":
        # What autovacuum would do after a bulk load: statistics, and the visibility map that lets
        # index-only scans skip the heap.
        with st.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE calls")
            conn.exec_driver_sql("VACUUM ANALYZE counts")
    else:
        with st.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    print(f"  seeded {n_calls} calls in {time.perf_counter() - t0:.1f}s", flush=True)
    st.dispose()


# ---------------------------------------------------------------------------- the run


async def wait_drained(port: int, seconds: float) -> tuple[int, float]:
    """Poll until no call of ACCOUNT is queued or in progress; (left, seconds waited)."""
    pool = Pool(port)
    t0 = time.perf_counter()
    left = -1
    try:
        while time.perf_counter() - t0 < seconds:
            left = 0
            for status in (0, 1):
                _, body = await pool.request(build("GET", f"/2008-08-01/Accounts/{ACCOUNT}/Calls?Status={status}&num=1",
                                                   (ACCOUNT, TOKEN)))
                left += int(body.split(b'total="', 1)[1].split(b'"', 1)[0])
            if left == 0:
                break
            await asyncio.sleep(0.25)
    finally:
        pool.close()
    return left, time.perf_counter() - t0


async def run_post(port: int, sink: int, args: argparse.Namespace, label: str, pid: int) -> dict[str, float]:
    calls = f"/2008-08-01/Accounts/{ACCOUNT}/Calls"
    form = {"Caller": CALLER, "Called": args.called, "Url": f"http://127.0.0.1:{sink}/report", "Timeout": "1"}
    post = build("POST", calls, (ACCOUNT, TOKEN), form)
    bare = build("GET", "/health", None)
    pool = Pool(port)
    out: dict[str, float] = {}
    # Paced dialling (--cps below the creation rate): the queue grows during the load and drains at
    # the paced rate afterwards; the engine's CPU per call then covers only the calls it dialled.
    paced = float(args.cps) < 1000
    try:
        await fixed_rate(pool, lambda i: bare, 100, 1)  # warm up connections and code paths
        await fixed_rate(pool, lambda i: post, 50, 1)
        await wait_drained(port, 0 if args.api_only or paced else 30)
        la = os.getloadavg()[0]
        pool.close()  # idle connections may have timed out while draining
        c0 = cpu_seconds(pid)
        b_lat, _ = await fixed_rate(pool, lambda i: bare, args.rate, args.seconds)
        c1 = cpu_seconds(pid)
        p_lat, errs = await fixed_rate(pool, lambda i: post, args.rate, args.seconds)
        c2 = cpu_seconds(pid)
        out.update(post_p50=pct(p_lat, 50), post_p99=pct(p_lat, 99), bare_p50=pct(b_lat, 50),
                   bare_p99=pct(b_lat, 99), load=la)
        print(f"[{label}] POST /Calls @ {args.rate:.0f}/s {args.seconds:.0f}s: p50 {out['post_p50']:.2f} ms "
              f"p99 {out['post_p99']:.2f} ms max {max(p_lat) * 1000:.1f} ms ({errs} errors) | bare /health "
              f"p50 {out['bare_p50']:.2f} p99 {out['bare_p99']:.2f} ms | ratio p50 "
              f"{out['post_p50'] / out['bare_p50']:.1f}x p99 {out['post_p99'] / out['bare_p99']:.1f}x "
              f"| conns {pool.opened} | load {la:.2f}", flush=True)
        left, waited = await wait_drained(port, 0 if args.api_only or paced else 120)
        c3 = cpu_seconds(pid)
        n = len(p_lat)
        out.update(cpu_bare=(c1[0] - c0[0]) / len(b_lat) * 1000, cpu_post=(c2[0] - c1[0]) / n * 1000,
                   cpu_engine=(c3[1] - c1[1]) / n * 1000)
        out["cpu_call"] = out["cpu_post"] + out["cpu_engine"]
        drained = (f"engine dialling paced at {args.cps}/s per account (queue not awaited)" if paced else
                   f"engine finished those calls {waited:.1f}s after the load ({left} not yet)")
        print(f"[{label}]   {drained} | CPU per request: /health {out['cpu_bare']:.2f} ms, POST /Calls {out['cpu_post']:.2f} ms in the API process, "
              f"{out['cpu_engine']:.2f} ms per call in the engine process (dialling, SIP, report webhook)",
              flush=True)
        rate, errs = await closed_loop(port, lambda i: post, args.seconds, args.conc)
        out["max_rate"] = rate
        n = int(rate * args.seconds)
        left, waited = await wait_drained(port, 0 if args.api_only or paced else 300)
        drained = ("calls queued, dialled at the paced rate" if paced else
                   f"engine dialled all {n} within {waited:.1f}s more ({left} not yet)")
        print(f"[{label}] max sustained POST /Calls ({args.conc} connections, {args.seconds:.0f}s): "
              f"{rate:.0f} calls/s ({errs} errors); {drained}", flush=True)
    finally:
        pool.close()
    return out


async def run_get(port: int, args: argparse.Namespace, label: str) -> None:
    big = f"/2008-08-01/Accounts/{BIG}/Calls"
    pool = Pool(port)
    filters = {"none": "", "Called": "Called=4155550042", "Caller": f"Caller={CALLER}", "Status": "Status=3",
               "StartTime=": "StartTime=2009-03-01", "StartTime>=": "StartTime>=2009-06-01",
               "StartTime<=": "StartTime<=2009-03-01", "StartTime>=&<=": "StartTime>=2009-03-01&StartTime<=2009-05-31",
               "Status+StartTime>=": "Status=5&StartTime>=2009-06-01",
               "Status+StartTime<=": "Status=3&StartTime<=2009-03-01", "Status+StartTime=": "Status=2&StartTime=2009-04-01",
               "Called+Status": "Called=4155550042&Status=2", "Called+StartTime<=": "Called=4155550042&StartTime<=2009-06-01",
               "Caller+Status": f"Caller={CALLER}&Status=3", "Caller+StartTime<=": f"Caller={CALLER}&StartTime<=2009-03-01",
               "Caller+Called": f"Caller={CALLER}&Called=4155550042",
               "Caller+Status+StartTime>=": f"Caller={CALLER}&Status=3&StartTime>=2009-06-01"}
    try:
        for name, q in filters.items():
            lat: list[float] = []
            total = "?"
            for rep in range(args.reps):
                for page in range(20):
                    raw = build("GET", f"{big}?{q}&page={page}" if q else f"{big}?page={page}", (BIG, TOKEN))
                    t = time.perf_counter()
                    status, body = await pool.request(raw)
                    lat.append(time.perf_counter() - t)
                    assert status == 200, body[:300]
                    if rep == 0 and page == 0:
                        total = body.split(b'total="', 1)[1].split(b'"', 1)[0].decode()
            print(f"[{label}] GET /Calls first 20 pages x{args.reps}, {name:<25} total {total:>7}: "
                  f"p50 {pct(lat, 50):6.2f} ms p99 {pct(lat, 99):6.2f} ms", flush=True)
        for q in ("", "Status=3&", "StartTime<=2009-03-01&", f"Caller={CALLER}&Status=3&"):
            # Pages at fixed fractions of the list (the middle is the costliest to reach), median of reps.
            _, body = await pool.request(build("GET", f"{big}?{q}page=0", (BIG, TOKEN)))
            numpages = int(body.split(b'numpages="', 1)[1].split(b'"', 1)[0])
            pages = [int(numpages * x) for x in (0.05, 0.25, 0.5, 0.75, 0.95)] + [numpages - 1]
            cells = []
            for page in pages:
                lat = []
                for _ in range(args.reps):
                    raw = build("GET", f"{big}?{q}page={page}", (BIG, TOKEN))
                    t = time.perf_counter()
                    status, _ = await pool.request(raw)
                    lat.append(time.perf_counter() - t)
                    assert status == 200
                cells.append(f"{page}:{statistics.median(lat) * 1000:.0f}")
            print(f"[{label}] GET /Calls deep pages (page:ms, median of {args.reps}) {q or 'no filter'}: "
                  + " ".join(cells), flush=True)
    finally:
        pool.close()


def start_server(cmd: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    ap.add_argument("--calls", type=int, default=1_000_000, help="seeded calls for the GET benchmark (0: none)")
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--conc", type=int, default=16, help="connections for the max-rate closed loop")
    ap.add_argument("--runs", type=int, default=1, help="repeat the POST phase; medians are printed")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--called", default="5005550190", help="sandbox number dialled (busy by default)")
    ap.add_argument("--cps", default="100000",
                    help="the engine's calls per second per account (default: unpaced, every call dialled at "
                         "once; ringback's own default is 10)")
    ap.add_argument("--skip-post", action="store_true")
    ap.add_argument("--api-only", action="store_true", help="serve the API alone (engine off) instead")
    ap.add_argument("--single-process", action="store_true",
                    help="ringback serve --single-process (by default the engine runs in a child process and "
                         "the CPU shown is the API process's only)")
    ap.add_argument("--skip-get", action="store_true")
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--pg-async-commit", action="store_true",
                    help="run ringback's PostgreSQL sessions with synchronous_commit=off (set in the URL)")
    ap.add_argument("--server-cmd", default=None,
                    help="custom server command; {port} {db} {sip} {rtp} {data} are filled in")
    ap.add_argument("--use", default=None, help="an already seeded database URL (no seeding, nothing dropped)")
    ap.add_argument("--sink", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.sink:
        run_sink(args.sink)
        return
    tmp = tempfile.mkdtemp(prefix="rb-bench-")
    targets = []
    if args.use:
        targets.append((args.use.split(":", 1)[0] + " (given)", args.use))
    elif args.db in ("sqlite", "both"):
        targets.append(("sqlite WAL synchronous=NORMAL", f"sqlite:///{tmp}/bench.db"))
    if args.db in ("pg", "both") and not args.use:
        import psycopg

        schema = "rb_bench_" + uuid.uuid4().hex[:8]
        admin = args.pg.replace("+psycopg", "")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            sync = conn.execute("SHOW synchronous_commit").fetchone()[0]  # type: ignore[index]
            fsync = conn.execute("SHOW fsync").fetchone()[0]  # type: ignore[index]
        opts = f"-csearch_path%3D{schema}"
        if args.pg_async_commit:
            sync, opts = "off (ringback's sessions)", opts + "%20-csynchronous_commit%3Doff"
        targets.append((f"postgresql synchronous_commit={sync} fsync={fsync}", f"{args.pg}?options={opts}"))
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, __file__, "--sink", str(sink_port)], start_new_session=True)
    try:
        for label, url in targets:
            print(f"== {label}", flush=True)
            if not args.use:
                seed(url, args.calls)
            port, sip = free_port(), free_sip_port()
            rtp0 = random.randrange(30000, 58000, 2)
            env = dict(os.environ, RINGBACK_ACCOUNT_SID=ACCOUNT, RINGBACK_AUTH_TOKEN=TOKEN,
                       PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
            if args.api_only:
                cmd = [sys.executable, "-c", API_ONLY, url, str(port)]
            elif args.server_cmd:
                cmd = shlex.split(args.server_cmd.format(port=port, db=url, sip=sip, rtp=f"{rtp0}-{rtp0 + 1999}",
                                                         data=tmp))
            else:
                cmd = [sys.executable, "-m", "ringback.cli", "serve", "--http", f"127.0.0.1:{port}",
                       "--sip", f"127.0.0.1:{sip}", "--rtp-ports", f"{rtp0}-{rtp0 + 1999}", "--db", url,
                       "--cps", args.cps, "--data-dir", tmp] + (["--single-process"] if args.single_process else [])
            log = Path(tmp) / "server.log"
            proc = start_server(cmd, env, port, log)
            print(f"  server pid {proc.pid}: {' '.join(cmd)[:200]}", flush=True)
            try:
                if not args.skip_post:
                    results = [asyncio.run(run_post(port, sink_port, args, label, proc.pid)) for _ in range(args.runs)]
                    if args.runs > 1:
                        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
                        print(f"[{label}] MEDIAN of {args.runs}: POST p50 {med['post_p50']:.2f} ms p99 "
                              f"{med['post_p99']:.2f} ms | bare p50 {med['bare_p50']:.2f} p99 {med['bare_p99']:.2f}"
                              f" ms | ratio p50 {med['post_p50'] / med['bare_p50']:.1f}x | max "
                              f"{med['max_rate']:.0f} calls/s | CPU/call {med['cpu_call']:.2f} ms | load {med['load']:.2f}", flush=True)
                if not args.skip_get and args.calls:
                    asyncio.run(run_get(port, args, label))
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                lines = log.read_text(errors="replace").splitlines()
                errors = [i for i, ln in enumerate(lines) if " ERROR " in ln]
                for ln in lines:
                    if " SIP " in ln:  # the engine's SIP counters: retransmissions mean late answers
                        print("   ", ln.split(" INFO ", 1)[-1])
                if errors:
                    first = "\n    ".join(ln[:300] for ln in lines[errors[0]:errors[0] + 25])
                    print(f"  server logged {len(errors)} errors, first:\n    {first}", flush=True)
            if url.startswith("postgresql") and not args.use:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        os.killpg(sink.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
