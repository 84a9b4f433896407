"""The ASGI app: routing, auth, formats and error handling around the resource modules."""

from __future__ import annotations

import base64
import binascii
import hmac
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..store.db import Store
from ..store.models import Account
from . import (
    accounts,
    caller_ids,
    calls,
    conferences,
    incoming_numbers,
    notifications,
    recordings,
    transcriptions,
)
from .context import ApiHooks, Ctx, Reply, Settings
from .errors import MORE_INFO, RestError, method_not_allowed, not_found, unauthorized
from .params import parse_form, parse_query
from .render import CONTENT_TYPES, rest_exception
from .render import render as render_doc

log = logging.getLogger("ringback.api")

API_PREFIX = "/2008-08-01/"
MAX_BODY = 64 * 1024
DOC_FORMATS = frozenset(CONTENT_TYPES)
AUTH_CACHE_SECONDS = 2.0

Handler = Callable[..., Any]  # returns a Reply, or an awaitable of one


@dataclass(frozen=True)
class Endpoint:
    pattern: tuple[str, ...]  # '*' captures a path segment
    methods: dict[str, Handler]
    formats: frozenset[str] = DOC_FORMATS
    default_format: str = "xml"
    public_get: bool = False  # recording instances are fetched without credentials


def _ep(pattern: str, formats: frozenset[str] = DOC_FORMATS, default: str = "xml", public_get: bool = False,
        **methods: Handler) -> Endpoint:
    return Endpoint(tuple(p for p in pattern.split("/") if p), methods, formats, default, public_get)


# Paths below /2008-08-01/Accounts/{AC}; literal segments win over '*'.
ENDPOINTS: list[Endpoint] = [
    _ep("", GET=accounts.get_account, POST=accounts.update_account, PUT=accounts.update_account,
        DELETE=accounts.delete_account),
    _ep("Calls", GET=calls.list_calls, POST=calls.create),
    _ep("Calls/*", GET=calls.get_call, POST=calls.redirect),
    _ep("Calls/*/Segments", GET=calls.segments),
    _ep("Calls/*/Segments/*", GET=calls.segment),
    _ep("Calls/*/Recordings", GET=calls.call_recordings),
    _ep("Calls/*/Notifications", GET=calls.call_notifications),
    _ep("IncomingPhoneNumbers", GET=incoming_numbers.list_numbers),
    _ep("IncomingPhoneNumbers/Local", GET=lambda ctx: incoming_numbers.list_numbers(ctx, "Local"),
        POST=lambda ctx: incoming_numbers.provision(ctx, "Local")),
    _ep("IncomingPhoneNumbers/TollFree", GET=lambda ctx: incoming_numbers.list_numbers(ctx, "TollFree"),
        POST=lambda ctx: incoming_numbers.provision(ctx, "TollFree")),
    _ep("IncomingPhoneNumbers/*", GET=incoming_numbers.get_number, POST=incoming_numbers.update_number,
        PUT=incoming_numbers.update_number, DELETE=incoming_numbers.release_number),
    _ep("OutgoingCallerIds", GET=caller_ids.list_caller_ids, POST=caller_ids.start_validation),
    _ep("OutgoingCallerIds/*", GET=caller_ids.get_caller_id, POST=caller_ids.update_caller_id,
        PUT=caller_ids.update_caller_id, DELETE=caller_ids.delete_caller_id),
    _ep("Recordings", GET=recordings.list_recordings),
    _ep("Recordings/*", DOC_FORMATS | {"wav", "mp3"}, "wav", True, GET=recordings.get_recording,
        DELETE=recordings.delete_recording),
    _ep("Recordings/*/Transcriptions", GET=transcriptions.list_recording_transcriptions),
    _ep("Recordings/*/Transcriptions/*", DOC_FORMATS | {"txt"}, GET=transcriptions.get_recording_transcription),
    _ep("Transcriptions", GET=transcriptions.list_transcriptions),
    _ep("Transcriptions/*", DOC_FORMATS | {"txt"}, GET=transcriptions.get_transcription),
    _ep("Notifications", GET=notifications.list_notifications),
    _ep("Notifications/*", GET=notifications.get_notification, DELETE=notifications.delete_notification),
    _ep("Conferences", GET=conferences.list_conferences),
    _ep("Conferences/*", GET=conferences.get_conference),
    _ep("Conferences/*/Participants", GET=conferences.list_participants),
    _ep("Conferences/*/Participants/*", GET=conferences.get_participant, POST=conferences.update_participant,
        DELETE=conferences.kick_participant),
]


def _match(segments: list[str]) -> tuple[Endpoint, list[str]] | None:
    best: tuple[int, Endpoint, list[str]] | None = None
    for ep in ENDPOINTS:
        if len(ep.pattern) != len(segments):
            continue
        caps: list[str] = []
        literal = 0
        for pat, seg in zip(ep.pattern, segments, strict=True):
            if pat == "*":
                caps.append(seg)
            elif pat == seg:
                literal += 1
            else:
                break
        else:
            if best is None or literal > best[0]:
                best = (literal, ep, caps)
    return None if best is None else (best[1], best[2])


class Api:
    def __init__(self, store: Store, settings: Settings, hooks: ApiHooks) -> None:
        self.store = store
        self.settings = settings
        self.hooks = hooks
        self._auth_cache: dict[str, tuple[float, Account]] = {}

    # -- auth ---------------------------------------------------------------
    def _load_account(self, sid: str) -> Account | None:
        hit = self._auth_cache.get(sid)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.store.session(readonly=True) as s:
            acct = s.get(Account, sid)
        if acct is not None:
            if len(self._auth_cache) > 10000:
                self._auth_cache.clear()
            self._auth_cache[sid] = (now + AUTH_CACHE_SECONDS, acct)
        return acct

    def forget(self, sid: str) -> None:
        self._auth_cache.pop(sid, None)

    @staticmethod
    def _credentials(header: str | None) -> tuple[str, str]:
        if not header or not header[:6].lower() == "basic ":
            raise unauthorized()
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise unauthorized() from None
        user, sep, password = decoded.partition(":")
        if not sep or len(user) != 34:
            raise unauthorized()
        return user, password

    @staticmethod
    def _check(acct: Account | None, password: str) -> Account:
        # Compare even when the account is missing so timing does not reveal which sids exist.
        expected = acct.auth_token if acct is not None else "0" * 32
        ok = hmac.compare_digest(expected.encode(), password.encode("utf-8", "replace"))
        if acct is None or not ok:
            raise unauthorized()
        return acct

    def authenticate(self, header: str | None) -> Account:
        """Blocking form (may read the database): for callers already on a worker thread."""
        user, password = self._credentials(header)
        return self._check(self._load_account(user), password)

    async def authenticate_async(self, header: str | None) -> Account:
        """On the event loop: a cached account costs no thread hop; only a miss reads the database."""
        user, password = self._credentials(header)
        hit = self._auth_cache.get(user)
        if hit is not None and hit[0] > time.monotonic():
            acct: Account | None = hit[1]
        else:
            acct = await anyio.to_thread.run_sync(self._load_account, user)
        return self._check(acct, password)

    # -- request handling ---------------------------------------------------
    def _error(self, err: RestError, fmt: str) -> Response:
        more = MORE_INFO.format(code=err.code) if err.code is not None else None
        doc = rest_exception(err.status, err.message, err.code, more)
        fmt = fmt if fmt in DOC_FORMATS else "xml"
        headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if err.status == 401 else {}
        return Response(render_doc(doc, fmt, err.status), err.status, headers, media_type=CONTENT_TYPES[fmt])

    def _respond(self, reply: Reply, fmt: str) -> Response:
        if reply.status == 204:
            return Response(status_code=204, headers=reply.headers)
        if reply.body is not None:
            return Response(reply.body, reply.status, reply.headers, media_type=reply.content_type)
        assert reply.doc is not None
        return Response(render_doc(reply.doc, fmt, reply.status), reply.status, reply.headers,
                        media_type=CONTENT_TYPES[fmt])

    async def handle(self, request: Request) -> Response:
        fmt = "xml"
        try:
            path = request.url.path  # percent-decoded; SIDs never need escaping
            rest = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else ""
            segments = [s for s in rest.split("/") if s != ""] if rest else []
            if segments:
                last = segments[-1]
                if "." in last:
                    base, _, ext = last.rpartition(".")
                    segments[-1] = base
                    fmt = ext.lower()
            return await self._dispatch(request, segments, fmt, path)
        except RestError as err:
            return self._error(err, fmt)
        except Exception:  # noqa: BLE001 - every failure must still be a RestException
            log.exception("internal error on %s %s", request.method, request.url.path)
            return self._error(RestError(500, "Internal server error"), fmt)

    async def _dispatch(self, request: Request, segments: list[str], fmt: str, path: str) -> Response:
        http_method = request.method.upper()
        if http_method == "HEAD":
            http_method = "GET"
        if not segments or segments[0] != "Accounts":
            raise not_found()
        if len(segments) == 1:
            if fmt not in DOC_FORMATS:
                raise not_found()
            acct = await self.authenticate_async(request.headers.get("authorization"))
            if http_method != "GET":
                raise method_not_allowed()
            ctx = self._ctx(request, acct, acct.sid, http_method, fmt, {}, path)
            return self._respond(accounts.list_accounts(ctx), fmt)
        account_sid = segments[1]
        found = _match(segments[2:])
        endpoint = found[0] if found else None
        public = endpoint is not None and endpoint.public_get and http_method == "GET"
        acct: Account | None = None
        if not public:
            acct = await self.authenticate_async(request.headers.get("authorization"))
            if acct.sid != account_sid:
                raise not_found()  # another account's resources are never visible
        if endpoint is None or fmt not in endpoint.formats:
            raise not_found()
        if "." not in path.rsplit("/", 1)[-1]:
            fmt = endpoint.default_format
        handler = endpoint.methods.get(http_method)
        if handler is None:
            raise method_not_allowed()
        form: dict[str, str] = {}
        if http_method in ("POST", "PUT", "DELETE"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise RestError(413, "Request body too large", 20001)
            ctype = request.headers.get("content-type", "application/x-www-form-urlencoded").lower()
            if body and ctype.startswith("application/x-www-form-urlencoded"):
                form = parse_form(body)
        ctx = self._ctx(request, acct, account_sid, http_method, fmt, form, path)
        args = found[1]  # type: ignore[index]
        if any("\x00" in a for a in args):
            # No Sid holds NUL, and PostgreSQL would refuse it as a parameter (a 500, not a 404).
            raise not_found()
        if inspect.iscoroutinefunction(handler):
            # Async handlers do their own (cheap) work on the loop and hand writes to the store's
            # writer thread: no worker-thread hop per request.
            reply = await handler(ctx, *args)
        else:
            reply = await anyio.to_thread.run_sync(lambda: handler(ctx, *args))
        for fire in ctx.after:
            try:
                fire(self.hooks)
            except Exception:  # noqa: BLE001 - a hook failure must not fail a committed request
                log.exception("API hook failed")
        if http_method == "POST" and segments[2:] == [] and acct is not None:
            self.forget(acct.sid)
        return self._respond(reply, fmt)

    def _ctx(self, request: Request, acct: Account | None, account_sid: str, method: str, fmt: str,
             form: dict[str, str], path: str) -> Ctx:
        raw_query = request.scope.get("query_string", b"")
        return Ctx(store=self.store, settings=self.settings, account=acct, account_sid=account_sid,
                   method=method, fmt=fmt, query=parse_query(raw_query), form=form, path=path)


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(
    store: Store,
    *,
    public_url: str,
    sandbox_trunk: bool = True,
    recordings_dir: str = "recordings",
    hooks: ApiHooks | None = None,
    number_pool: list[str] | None = None,
    extra_routes: list[BaseRoute] | None = None,
    ready: Callable[[], bool] | None = None,
) -> Starlette:
    """The REST API as an ASGI app. hooks tell the engine about committed changes.

    ready: optional probe for GET /health (503 until it returns True, e.g. during shutdown).
    """
    settings = Settings(public_url=public_url.rstrip("/"), sandbox_trunk=sandbox_trunk,
                        recordings_dir=recordings_dir, number_pool=list(number_pool or []))
    api = Api(store, settings, hooks or ApiHooks())

    async def health_ep(request: Request) -> Response:
        if ready is not None and not ready():
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return await health(request)

    async def api_ep(request: Request) -> Response:
        return await api.handle(request)

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    routes: list[BaseRoute] = [
        Route("/health", health_ep, methods=["GET", "HEAD"]),
        *(extra_routes or []),
        Route("/2008-08-01/{path:path}", api_ep, methods=methods),
        Route("/2008-08-01", api_ep, methods=methods),
    ]
    app = Starlette(routes=routes)
    app.state.api = api
    return app


__all__ = ["create_app", "ApiHooks", "Settings", "Any"]
