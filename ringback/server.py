"""`ringback serve`: the REST API, the SIP user agent, the media engine, the dialer and (by default)
the sandbox phone network, in one asyncio process.

Decision (DESIGN.md asks to decide by measuring): the engine's work runs on one event loop, except
the media clock, which runs in a thread of its own (ringback/media/clock.py): as a task on the
loop its ticks waited behind call setup, and 2% of packets left more than 5 ms off their 20 ms grid
at 100 POST /Calls per second (bench/engine/bench_clock_under_load.py). The database work
runs on worker threads. `ringback serve` puts the API in one process and this engine in another
(ringback/cli.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from typing import Any

import uvicorn
from starlette.routing import BaseRoute

from ringback.api.app import create_app
from ringback.api.context import ApiHooks
from ringback.config import Settings
from ringback.engine.conference import Conferences
from ringback.engine.context import EngineContext
from ringback.engine.dialer import Dialer
from ringback.engine.inbound import handle_invite
from ringback.engine.session import apply_redirect
from ringback.engine.trunk import Trunk
from ringback.engine.webhooks import FetchPolicy
from ringback.media.engine import MediaEngine
from ringback.sandbox.network import SandboxNetwork
from ringback.sandbox.plan import NumberingPlan
from ringback.sip.ua import UserAgent
from ringback.store.accounts import bootstrap
from ringback.store.db import Store

log = logging.getLogger("ringback.server")


class EngineHooks(ApiHooks):
    """What the API tells the engine after a change is committed (runs on the event loop)."""

    def __init__(self, server: RingbackServer) -> None:
        self.server = server

    def on_call_created(self, call_sid: str) -> None:
        if self.server.dialer is not None:
            self.server.dialer.wake()

    def on_call_redirect(self, call_sid: str) -> None:
        if self.server.ctx is not None:
            self.server.ctx.spawn(apply_redirect(self.server.ctx, call_sid), name=f"redirect-{call_sid}")

    def on_participant_update(self, conference_sid: str, call_sid: str, action: str) -> None:
        ctx = self.server.ctx
        if ctx is not None and ctx.conferences is not None:
            ctx.conferences.control(conference_sid, call_sid, {"muted": "mute", "unmuted": "unmute"}.get(action, "kick"))

    def on_validation_requested(self, validation_sid: str) -> None:
        ctx = self.server.ctx
        if ctx is not None:
            from ringback.engine.validation import run_validation

            ctx.spawn(run_validation(ctx, validation_sid), name=f"validation-{validation_sid}")


class RingbackServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self.media: MediaEngine | None = None
        self.ua: UserAgent | None = None
        self.sandbox: SandboxNetwork | None = None
        self.ctx: EngineContext | None = None
        self.dialer: Dialer | None = None
        self.http: uvicorn.Server | None = None
        self.http_port = settings.http_port
        self.account: tuple[str, str, bool] | None = None
        self.registration: Any = None
        self.control_sender: Any = None
        self.control_http: uvicorn.Server | None = None
        self._control_udp: Any = None
        self.stopping = False
        self._stopped = asyncio.Event()

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        s = self.settings
        from ringback.engine.amd_run import params_from_settings

        params_from_settings(s.amd)  # unknown or bad AMD parameters fail at start, not on a call
        s.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.store = await asyncio.to_thread(Store, s.database_url, recordings_dir=str(s.recordings_dir))
        self.account = await asyncio.to_thread(
            bootstrap, self.store, sandbox_trunk=s.sandbox_trunk, account_sid=s.account_sid, auth_token=s.auth_token
        )
        if s.role in ("all", "engine"):
            await self._start_engine()
        if s.role in ("all", "api"):
            await self._start_http()
        if self.role_engine_control():
            await self._start_control()
        if self.dialer is not None:
            await self.dialer.start()
        from ringback.gctune import settle_gc

        settle_gc()
        log.info("ringback ready (%s): http://%s:%d  sip:%s:%d", s.role, s.http_host, self.http_port, s.sip_host,
                 self.ua.port if self.ua else 0)

    def role_engine_control(self) -> bool:
        return self.settings.role == "engine" and bool(self.settings.control)

    async def _start_engine(self) -> None:
        s = self.settings
        assert self.store is not None
        from ringback.media.clock import set_media_sender, set_rt_priority

        set_media_sender(s.media_sender)
        if s.rt_priority:
            set_rt_priority(s.rt_priority)
        self.media = MediaEngine(s.sip_host, s.rtp_ports, advertise=s.advertise_host, rtp_timeout=s.rtp_timeout)
        await self.media.start()
        if s.sandbox_trunk:
            from ringback.config import parse_hostport

            plan = NumberingPlan.load(s.sandbox_file, s.timings)
            host, port = parse_hostport(s.sandbox_sip, 0)
            self.sandbox = SandboxNetwork(plan, self.media, host=host, port=port,
                                          heard_dir=f"{s.data_dir}/sandbox", t1=s.sip_t1)
            await self.sandbox.start()
            trunk = Trunk(host=self.sandbox.host, port=self.sandbox.port)
        else:
            trunk = Trunk.parse(s.trunk or "")
        self.ua = UserAgent(
            s.sip_host, s.sip_port, advertise=s.sip_advertise, on_invite=self._on_invite, t1=s.sip_t1,
            allowed_sources=self._allowed_sources(trunk), credentials=s.sip_users or None,
            nat_fallback=s.nat_fallback,
        )
        await self.ua.start()
        if s.register and trunk.user:
            # Inbound numbers on carriers that route by registration.
            host = f"[{trunk.host}]" if ":" in trunk.host else trunk.host
            self.registration = await self.ua.register(
                f"sip:{host}:{trunk.port}", f"sip:{trunk.user}@{host}", auth=trunk.auth
            )
        node_id = s.node_id or f"{socket.gethostname()}:{self.ua.port}"
        self.ctx = EngineContext(
            settings=s, store=self.store, ua=self.ua, media=self.media, trunk=trunk, node_id=node_id,
            fetch_policy=FetchPolicy.parse(s.fetch_deny),
        )
        self.ctx.conferences = Conferences(self.ctx)
        self.dialer = Dialer(self.ctx, cps=s.cps, dead_after=s.node_dead_after, max_calls=s.max_calls)

    async def _start_control(self) -> None:
        """Engine process: hooks from the API process (UDP) and sandbox calls (HTTP), same port."""
        from ringback.config import parse_hostport
        from ringback.control import ControlReceiver

        s = self.settings
        host, port = parse_hostport(s.control or "", 0)
        loop = asyncio.get_running_loop()
        self._control_udp, _ = await loop.create_datagram_endpoint(
            lambda: ControlReceiver(EngineHooks(self), s.control_secret), local_addr=(host, port)
        )
        from starlette.applications import Starlette

        from ringback.sandbox.routes import sandbox_routes

        app = Starlette(routes=sandbox_routes(self, control_secret=s.control_secret))
        config = uvicorn.Config(app, host=host, port=port, lifespan="off", log_level="warning", access_log=False)
        config.load()
        self.control_http = uvicorn.Server(config)
        self.control_http.lifespan = config.lifespan_class(config)
        await self.control_http.startup()

    def _allowed_sources(self, trunk: Trunk) -> list[str] | None:
        """Who may send us INVITEs: no toll fraud through an app that dials out.

        Explicit --sip-allow wins. With a real trunk, only its address (a name is resolved once at
        start); with the sandbox (all on loopback), loopback. Digest users (--sip-users) may call
        from anywhere else.
        """
        s = self.settings
        if s.sip_allow is not None:
            return s.sip_allow
        if s.sandbox_trunk:
            return ["127.0.0.0/8", "::1/128"]
        try:
            infos = socket.getaddrinfo(trunk.host, trunk.port, proto=socket.IPPROTO_UDP)
        except OSError:
            log.warning("cannot resolve trunk host %s: inbound INVITEs accepted from anywhere", trunk.host)
            return None
        return sorted({info[4][0] + ("/128" if ":" in info[4][0] else "/32") for info in infos})

    async def _on_invite(self, inc: Any) -> None:
        if self.ctx is None or self.stopping:
            await inc.reject(503)
            return
        await handle_invite(self.ctx, inc)

    def routes(self) -> list[BaseRoute]:
        from ringback.demo import demo_routes
        from ringback.sandbox.routes import sandbox_routes

        # The sandbox routes stay on with a real trunk too: `ringback sandbox serve` may be that trunk.
        return demo_routes() + sandbox_routes(self)

    def _hooks(self) -> ApiHooks:
        s = self.settings
        if s.role == "api" and s.control:
            from ringback.config import parse_hostport
            from ringback.control import ControlSender

            host, port = parse_hostport(s.control, 0)
            self.control_sender = ControlSender(host, port, s.control_secret)
            return self.control_sender
        return EngineHooks(self)

    async def _start_http(self) -> None:
        assert self.store is not None
        s = self.settings
        app = create_app(
            self.store, public_url=s.base_url, sandbox_trunk=s.sandbox_trunk, recordings_dir=str(s.recordings_dir),
            hooks=self._hooks(), extra_routes=self.routes(), ready=lambda: not self.stopping,
        )
        config = uvicorn.Config(app, host=s.http_host, port=s.http_port, lifespan="off", log_level="warning",
                                access_log=False, timeout_graceful_shutdown=5)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup()
        self.http = server
        if server.servers and server.servers[0].sockets:
            self.http_port = server.servers[0].sockets[0].getsockname()[1]
            if s.http_port == 0 and not s.public_url:
                s.http_port = self.http_port

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let live ones finish within the grace period, then close everything."""
        if self.stopping:
            await self._stopped.wait()
            return
        self.stopping = True
        grace = self.settings.shutdown_grace if grace is None else grace
        if self.dialer is not None:
            await self.dialer.stop()
        if self.ctx is not None and self.ctx.tasks:
            log.info("waiting up to %.0f s for %d live call tasks", grace, len(self.ctx.tasks))
            _, pending = await asyncio.wait(set(self.ctx.tasks), timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        for srv in (self.http, self.control_http):
            if srv is not None:
                srv.should_exit = True
                with contextlib.suppress(Exception):
                    await srv.shutdown()
        if self._control_udp is not None:
            self._control_udp.close()
        if self.control_sender is not None:
            self.control_sender.close()
        if self.ctx is not None and self.ctx.http_client is not None:
            with contextlib.suppress(Exception):
                await self.ctx.http_client.aclose()
        for closer in (self.ua, self.sandbox, self.media):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer.close()
        if self.store is not None:
            self.store.dispose()
        self._stopped.set()

    async def run_forever(self) -> None:
        """Serve until SIGTERM/SIGINT, then shut down gracefully."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        from ringback.gctune import gc_pauses

        log.info("shutting down (%s; garbage collection: %s)", self.settings.role, gc_pauses())
        for name, ua in (("trunk", self.ua), ("sandbox", self.sandbox.ua if self.sandbox else None)):
            if ua is not None:  # how the SIP side went: retransmissions mean late answers
                log.info("SIP %s: %s", name, ", ".join(f"{k} {v}" for k, v in ua.endpoint.stats.items() if v))
        await self.stop()
