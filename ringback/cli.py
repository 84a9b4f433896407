"""`ringback serve | account | number | callerid | call | calls | sandbox | amd`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
from typing import Any

from ringback.config import add_server_arguments, load_settings
from ringback.control import free_udp_tcp_port


def _store(args: argparse.Namespace) -> Any:
    from ringback.store.db import Store

    settings = load_settings(args)
    return Store(settings.database_url, recordings_dir=str(settings.recordings_dir))


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)


# ---------------------------------------------------------------------- server side


def cmd_serve(args: argparse.Namespace) -> int:
    from ringback.server import RingbackServer

    settings = load_settings(args)
    child: subprocess.Popen[bytes] | None = None
    split = not args.single_process and settings.role == "all"
    if split:
        # The API in this process; SIP, media, the dialer and the sandbox in a child. Measured
        # (bench/api/bench_api.py, 2 cores, SQLite): POST /Calls at 200/s p50 3.1 ms vs 8.5 ms in
        # one process, and 596 vs 229 calls/s sustained, because the engine's per-call work no
        # longer queues behind HTTP on one event loop.
        settings.role = "api"
        settings.control = f"127.0.0.1:{free_udp_tcp_port()}"
        settings.control_secret = secrets.token_hex(16)

    server = RingbackServer(settings)

    async def main() -> None:
        nonlocal child
        task = asyncio.ensure_future(server.run_forever())
        while server.account is None and not task.done():
            await asyncio.sleep(0.05)
        if server.account is not None:
            sid, token, created = server.account
            if created:
                print("Created account (keep these credentials):", flush=True)
            print(f"  AccountSid {sid}\n  AuthToken  {token}", flush=True)
            if split:
                argv = [a for a in sys.argv[1:] if a != "--engine-process"]
                env = dict(os.environ, RINGBACK_ROLE="engine", RINGBACK_CONTROL=settings.control or "",
                           RINGBACK_CONTROL_SECRET=settings.control_secret,
                           RINGBACK_HTTP=f"{settings.http_host}:{server.http_port}")
                child = subprocess.Popen([sys.executable, "-m", "ringback.cli", *argv], env=env,
                                         preexec_fn=_die_with_parent)
        try:
            await task
        finally:
            if child is not None and child.poll() is None:
                # The engine drains its live calls within the grace period, then exits.
                child.send_signal(signal.SIGTERM)
                await asyncio.to_thread(child.wait, settings.shutdown_grace + 15)

    _run_loop(main())
    return 0


def _die_with_parent() -> None:
    """The engine child is killed with the API process (a kill -9 of `ringback serve` is a crash of
    the whole service, and a restart must not find an orphan engine still dialling)."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)




def cmd_account_create(args: argparse.Namespace) -> int:
    from ringback.store.accounts import add_number, create_account, next_sandbox_number

    store = _store(args)
    sid, token = create_account(store)
    number = None
    if load_settings(args).sandbox_trunk:
        number = next_sandbox_number(store)
        if number:
            add_number(store, sid, number)
    print(f"AccountSid {sid}\nAuthToken  {token}")
    if number:
        print(f"Number     {number}")
    return 0


def cmd_number_add(args: argparse.Namespace) -> int:
    from ringback.store.accounts import add_number

    sid = add_number(_store(args), args.account, args.number, args.url)
    print(sid)
    return 0


def cmd_callerid_add(args: argparse.Namespace) -> int:
    from ringback.store.accounts import add_caller_id

    print(add_caller_id(_store(args), args.account, args.number))
    return 0


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from ringback.config import Timings, parse_hostport
    from ringback.media.engine import MediaEngine
    from ringback.sandbox.network import SandboxNetwork
    from ringback.sandbox.plan import NumberingPlan

    host, port = parse_hostport(args.sip or "127.0.0.1:5070", 5070)
    settings = load_settings(None)

    async def main() -> None:
        import signal

        media = MediaEngine(host, settings.rtp_ports if args.rtp_ports is None else _ports(args.rtp_ports))
        await media.start()
        net = SandboxNetwork(NumberingPlan.load(args.sandbox, settings.timings or Timings()), media,
                             host=host, port=port, heard_dir=os.path.join(args.data_dir or ".", "sandbox"))
        await net.start()
        print(f"sandbox network on sip:{net.host}:{net.port}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await net.close()
        await media.close()

    _run_loop(main())
    return 0


def _ports(value: str) -> tuple[int, int]:
    from ringback.config import parse_port_range

    return parse_port_range(value)


# ---------------------------------------------------------------------- client side


def _client(args: argparse.Namespace) -> Any:
    import httpx

    sid = args.account or os.environ.get("RINGBACK_ACCOUNT_SID")
    token = args.token or os.environ.get("RINGBACK_AUTH_TOKEN")
    if not sid or not token:
        sys.exit("ringback: give --account and --token (or RINGBACK_ACCOUNT_SID / RINGBACK_AUTH_TOKEN)")
    base = args.server or os.environ.get("RINGBACK_URL") or f"http://{os.environ.get('RINGBACK_HTTP', '127.0.0.1:8080')}"
    return httpx.Client(base_url=base, auth=(sid, token), timeout=120.0), sid


def cmd_call(args: argparse.Namespace) -> int:
    client, sid = _client(args)
    data = {"Caller": args.caller, "Called": args.called, "Url": args.url, "Method": args.method}
    for key, value in (("SendDigits", args.send_digits), ("IfMachine", args.if_machine), ("Timeout", args.timeout)):
        if value:
            data[key] = str(value)
    r = client.post(f"/2008-08-01/Accounts/{sid}/Calls", data=data)
    print(r.text)
    return 0 if r.status_code < 300 else 1


def cmd_calls(args: argparse.Namespace) -> int:
    client, sid = _client(args)
    params = {k: v for k, v in (("Status", args.status), ("Called", args.called), ("Caller", args.caller)) if v}
    r = client.get(f"/2008-08-01/Accounts/{sid}/Calls.json", params=params)
    print(r.text)
    return 0 if r.status_code < 300 else 1


def cmd_sandbox_heard(args: argparse.Namespace) -> int:
    client, _ = _client(args)
    r = client.get(f"/sandbox/Calls/{args.call_sid}.json")
    if r.status_code != 200:
        print(r.text, file=sys.stderr)
        return 1
    print(json.dumps(r.json(), indent=2))
    if args.wav:
        w = client.get(f"/sandbox/Calls/{args.call_sid}.wav")
        with open(args.wav, "wb") as f:
            f.write(w.content)
    return 0


def cmd_sandbox_call(args: argparse.Namespace) -> int:
    client, _ = _client(args)
    data = {"From": args.from_number, "To": args.to_number, "HangupAfter": str(args.hangup_after)}
    if args.say:
        data["Say"] = args.say
    if args.digits:
        data["Digits"] = args.digits
    r = client.post("/sandbox/Calls", data=data)
    print(json.dumps(r.json(), indent=2) if r.headers.get("content-type", "").startswith("application/json")
          else r.text)
    return 0 if r.status_code < 300 else 1


def cmd_amd(args: argparse.Namespace, rest: list[str]) -> int:
    from ringback.amd.cli import main as amd_main

    return amd_main(rest)


# ---------------------------------------------------------------------- parser


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", help="ringback base URL (RINGBACK_URL, default http://127.0.0.1:8080)")
    p.add_argument("--account", help="AccountSid (RINGBACK_ACCOUNT_SID)")
    p.add_argument("--token", help="AuthToken (RINGBACK_AUTH_TOKEN)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ringback", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the service (API, SIP, media, sandbox)")
    add_server_arguments(p)
    p.set_defaults(func=cmd_serve)

    acc = sub.add_parser("account", help="manage accounts").add_subparsers(dest="sub", required=True)
    p = acc.add_parser("create", help="create an account and print its credentials")
    p.add_argument("--db")
    p.add_argument("--trunk")
    p.set_defaults(func=cmd_account_create)

    num = sub.add_parser("number", help="incoming numbers").add_subparsers(dest="sub", required=True)
    p = num.add_parser("add", help="give an account an incoming number")
    p.add_argument("number")
    p.add_argument("--account", required=True)
    p.add_argument("--url", help="voice Url for inbound calls")
    p.add_argument("--db")
    p.set_defaults(func=cmd_number_add)

    cid = sub.add_parser("callerid", help="outgoing caller IDs").add_subparsers(dest="sub", required=True)
    p = cid.add_parser("add", help="add a validated caller ID")
    p.add_argument("number")
    p.add_argument("--account", required=True)
    p.add_argument("--db")
    p.set_defaults(func=cmd_callerid_add)

    p = sub.add_parser("call", help="make a call through the REST API")
    _client_args(p)
    p.add_argument("--from", dest="caller", required=True)
    p.add_argument("--to", dest="called", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--method", default="POST")
    p.add_argument("--send-digits")
    p.add_argument("--if-machine", choices=["Continue", "Hangup"])
    p.add_argument("--timeout", type=int)
    p.set_defaults(func=cmd_call)

    p = sub.add_parser("calls", help="list calls")
    _client_args(p)
    p.add_argument("--status")
    p.add_argument("--called")
    p.add_argument("--caller")
    p.set_defaults(func=cmd_calls)

    sb = sub.add_parser("sandbox", help="the sandbox phone network").add_subparsers(dest="sub", required=True)
    p = sb.add_parser("serve", help="run the sandbox network as its own process")
    p.add_argument("--sip", default="127.0.0.1:5070")
    p.add_argument("--sandbox", help="more phones (TOML or JSON)")
    p.add_argument("--rtp-ports")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_sandbox_serve)
    p = sb.add_parser("heard", help="what a sandbox phone heard on a call")
    _client_args(p)
    p.add_argument("call_sid")
    p.add_argument("--wav", help="also save the audio to this file")
    p.set_defaults(func=cmd_sandbox_heard)
    p = sb.add_parser("call", help="a sandbox phone calls one of your numbers (inbound call)")
    _client_args(p)
    p.add_argument("from_number")
    p.add_argument("to_number")
    p.add_argument("--say", default="Hello?")
    p.add_argument("--digits")
    p.add_argument("--hangup-after", type=float, default=30.0)
    p.set_defaults(func=cmd_sandbox_call)

    p = sub.add_parser("amd", help="run the answering-machine detector on WAV files", add_help=False)
    p.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "amd":
        return cmd_amd(argparse.Namespace(), argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
