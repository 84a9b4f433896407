"""The built-in demo app (`/demo/hello`): says hello and gathers a digit, so the README's very
first call works with no app of your own."""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

TWIML = "application/xml"


async def _form(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: str(v) for k, v in form.items()})
    return params


async def hello(request: Request) -> Response:
    params = await _form(request)
    status = params.get("DialStatus", "")
    if status in ("busy", "no-answer", "fail", "hangup-machine"):
        # Outcome reports need no TwiML; the response is ignored.
        return Response("<Response/>", media_type=TWIML)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>'
        "<Say>Hello from ringback. This is your first call.</Say>"
        '<Gather numDigits="1" timeout="5" action="/demo/hello/gathered">'
        "<Say>Press any key on your phone.</Say></Gather>"
        "<Say>We did not hear a key. Goodbye.</Say></Response>"
    )
    return Response(body, media_type=TWIML)


async def gathered(request: Request) -> Response:
    digits = (await _form(request)).get("Digits", "")
    body = f"<Response><Say>You pressed {escape(' '.join(digits))}. Goodbye.</Say><Hangup/></Response>"
    return Response(body, media_type=TWIML)


def demo_routes() -> list[BaseRoute]:
    return [
        Route("/demo/hello", hello, methods=["GET", "POST"]),
        Route("/demo/hello/gathered", gathered, methods=["GET", "POST"]),
    ]
