"""HTTP face of the sandbox: what a virtual phone heard, and inbound calls from sandbox phones.

    GET  /sandbox/Calls/{CallSid}.json   digits received, seconds of audio, answer/hangup times
    GET  /sandbox/Calls/{CallSid}.wav    the audio the phone heard
    POST /sandbox/Calls                  From, To[, Say, Digits, HangupAfter]: a sandbox phone calls
                                         one of the account's numbers (an inbound call)

All with the account's credentials; a call of another account is 404.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ringback import numbers
from ringback.control import SECRET_HEADER, secret_ok
from ringback.sandbox.network import load_heard
from ringback.store.models import Call, IncomingNumber

if TYPE_CHECKING:
    from ringback.server import RingbackServer


def sandbox_routes(server: RingbackServer, *, control_secret: str | None = None) -> list[BaseRoute]:
    """With `control_secret`, these are the engine process's control routes: the API process has
    already authenticated the account and names it in a header."""

    def account_of(request: Request) -> str | None:
        if control_secret is not None:
            if not secret_ok(request.headers, control_secret):
                return None
            return request.headers.get("X-Ringback-Account") or None
        api = request.app.state.api
        try:
            return api.authenticate(request.headers.get("authorization")).sid
        except Exception:
            return None

    async def forward(request: Request, account: str) -> Response:
        """API process of a split server: the engine process's sandbox places the call."""
        import httpx

        body = await request.body()
        headers = {SECRET_HEADER: server.settings.control_secret, "X-Ringback-Account": account,
                   "Content-Type": request.headers.get("content-type", "application/x-www-form-urlencoded")}
        async with httpx.AsyncClient(timeout=600) as client:
            r = await client.post(f"http://{server.settings.control}/sandbox/Calls", content=body, headers=headers)
        return Response(r.content, r.status_code, media_type=r.headers.get("content-type"))

    def unauthorized() -> Response:
        return JSONResponse({"error": "unauthorized"}, 401, headers={"WWW-Authenticate": 'Basic realm="ringback"'})

    async def heard(request: Request) -> Response:
        account = await asyncio.to_thread(account_of, request)
        if account is None:
            return unauthorized()
        sid, _, ext = request.path_params["name"].rpartition(".")
        if ext not in ("json", "wav"):
            sid, ext = request.path_params["name"], "json"
        assert server.store is not None

        def owner() -> str | None:
            with server.store.session(readonly=True) as s:
                return s.scalar(select(Call.account_sid).where(Call.sid == sid))

        if await asyncio.to_thread(owner) != account:
            return JSONResponse({"error": "not found"}, 404)
        if server.sandbox is not None:
            found = server.sandbox.load(sid)
        else:
            # The sandbox runs as its own process (`ringback sandbox serve`) in the same data dir.
            found = load_heard(f"{server.settings.data_dir}/sandbox", sid)
        if found is None:
            return JSONResponse({"error": "not found"}, 404)
        data, wav = found
        if ext == "wav":
            return Response(wav, media_type="audio/x-wav")
        return JSONResponse(data)

    async def place(request: Request) -> Response:
        account = await asyncio.to_thread(account_of, request)
        if account is None:
            return unauthorized()
        if server.settings.role == "api" and server.settings.control:
            return await forward(request, account)
        form: dict[str, Any] = dict(await request.form())
        try:
            from_n = numbers.normalize(str(form.get("From", "")))
            to_n = numbers.normalize(str(form.get("To", "")))
        except numbers.NumberError as exc:
            return JSONResponse({"error": f"bad number: {exc}"}, 400)
        assert server.store is not None and server.ua is not None

        def owns() -> bool:
            with server.store.session(readonly=True) as s:
                return bool(s.scalar(select(IncomingNumber.sid).where(
                    IncomingNumber.account_sid == account, IncomingNumber.phone_number == to_n)))

        if server.sandbox is None or not await asyncio.to_thread(owns):
            return JSONResponse({"error": "To is not one of this account's numbers"}, 404)
        call = server.sandbox.call(
            from_n, to_n, server.ua.host, server.ua.port,
            say=str(form.get("Say", "Hello?")) or None, digits=str(form.get("Digits", "")) or None,
            digits_after=float(form.get("DigitsAfter", 2.0)), hangup_after=float(form.get("HangupAfter", 30.0)),
        )
        if str(form.get("Wait", "true")).lower() in ("false", "0", "no"):
            asyncio.ensure_future(call)
            return JSONResponse({"status": "calling"}, 202)
        h = await call
        return JSONResponse(h.to_json(), 201)

    return [
        Route("/sandbox/Calls", place, methods=["POST"]),
        Route("/sandbox/Calls/{name}", heard, methods=["GET"]),
    ]
