"""Runs an app's call flow on one call leg: fetch, parse, execute, repeat.

    outcome = await Interpreter(channel, AppClient(sid, token), url, "POST",
                                extra_params={"DialStatus": "answered"}).run()

Each step fetches one document (with the call's standard parameters, signed),
then runs its verbs in order until one moves control elsewhere (Gather input,
Record, Dial action, Redirect), hangs up, or the document runs out (the call
ends).  `redirect()` interrupts whatever is running (live redirect, POST
/Calls/{Sid} with CurrentUrl).  Errors become Notifications; a fatal one speaks
"An application error has occurred.", hangs up and ends with app_error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ringback.engine.webhooks import AppClient, AppResponse
from ringback.twiml import media
from ringback.twiml.channel import ERROR, WARNING, Channel, Notification, Outcome
from ringback.twiml.context import Context, End, Fatal, Goto, Step
from ringback.twiml.parse import Dial, Gather, Hangup, ParseResult, Pause, Play, Record, Redirect, Say, parse
from ringback.twiml.verbs import dial, gather, hangup, pause, play, record, redirect, say

MAX_FETCHES_WITHOUT_AUDIO = 100
TOO_MANY_FETCHES = 12400  # no dedicated 2008 code: reported as an internal failure

VERBS: dict[type, Callable[[Any, Context], Awaitable[Step]]] = {
    Say: say.execute,
    Play: play.execute,
    Pause: pause.execute,
    Gather: gather.execute,
    Record: record.execute,
    Dial: dial.execute,
    Redirect: redirect.execute,
    Hangup: hangup.execute,
}


class Interpreter:
    def __init__(
        self,
        channel: Channel,
        app_client: AppClient,
        url: str,
        method: str = "POST",
        *,
        extra_params: dict[str, str] | None = None,
        fallback_url: str | None = None,
        fallback_method: str = "POST",
        max_fetches_without_audio: int = MAX_FETCHES_WITHOUT_AUDIO,
        whisper: bool = False,
    ) -> None:
        self.channel = channel
        self.app = app_client
        self.url = url
        self.method = (method or "POST").upper()
        self.extra_params = dict(extra_params or {})
        self.fallback_url = fallback_url
        self.fallback_method = (fallback_method or "POST").upper()
        self.max_fetches_without_audio = max_fetches_without_audio
        # A <Number url> document: running out means "connect", not "hang up".
        self.whisper = whisper
        self.notifications: list[Notification] = []
        self.steps = 0  # documents fetched and run
        self._fetches_without_audio = 0
        self._pending: Goto | None = None
        self._task: asyncio.Task[Goto | Outcome] | None = None
        self._fallback_used = fallback_url is None

    # ------------------------------------------------------------ public

    def redirect(self, url: str, method: str = "POST") -> None:
        """Live redirect: stop the current verb and continue with `url`."""
        self._pending = Goto(url, (method or "POST").upper())
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def run(self) -> Outcome:
        nxt: Goto | Outcome = Goto(self.url, self.method, self.extra_params)
        while isinstance(nxt, Goto):
            if self.channel.hung_up.is_set() and not nxt.after_hangup:
                nxt = self._outcome("hung_up")
                break
            self._task = asyncio.create_task(self._step(nxt))
            try:
                nxt = await self._task
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if self._pending is None or (me is not None and me.cancelling()):
                    raise
                nxt = self._take_pending()
                continue
            if self._pending is not None:
                # A redirect that arrived just as the step finished still wins.
                nxt = self._take_pending()
        assert isinstance(nxt, Outcome)
        return nxt

    # ------------------------------------------------------------ steps

    def _take_pending(self) -> Goto:
        assert self._pending is not None
        goto, self._pending = self._pending, None
        return goto

    def _outcome(self, status: str, error: int | None = None) -> Outcome:
        return Outcome(status, error, list(self.notifications))  # type: ignore[arg-type]

    def _on_audio(self) -> None:
        self._fetches_without_audio = 0

    def _params(self, goto: Goto) -> dict[str, str]:
        params = dict(self.channel.params)
        params["CallStatus"] = "completed" if goto.after_hangup else "in-progress"
        params.update(goto.params)
        return params

    async def _notify(self, ctx: Context, code: int, message: str, log: int) -> None:
        await ctx.notify(code, message, log=log)

    def _context(self, url: str) -> Context:
        return Context(self.channel, self.app, url, on_audio=self._on_audio, notifications=self.notifications)

    async def _fetch(self, goto: Goto, ctx: Context) -> AppResponse:
        self._fetches_without_audio += 1
        self.steps += 1
        res = await self.app.fetch(goto.url, goto.method, self._params(goto))
        ctx.response = res
        # Relative URLs resolve against the document (after redirects), without our query.
        ctx.doc_url = goto.url if res.url == res.request_url else res.url
        return res

    async def _step(self, goto: Goto) -> Goto | Outcome:
        ctx = self._context(goto.url)
        if self._fetches_without_audio >= self.max_fetches_without_audio:
            return await self._fatal(
                ctx, TOO_MANY_FETCHES,
                f"more than {self.max_fetches_without_audio} consecutive fetches without audio played",
            )
        res = await self._fetch(goto, ctx)
        if goto.after_hangup:
            # The caller is gone: the app is told, its answer is not run.
            if res.error is not None:
                await self._notify(ctx, res.error, res.error_message, ERROR)
            return self._outcome("hung_up")
        failure, doc = self._check(res)
        if failure is not None and not self._fallback_used:
            self._fallback_used = True
            await self._notify(ctx, failure[0], failure[1], ERROR)
            assert self.fallback_url is not None
            goto = Goto(self.fallback_url, self.fallback_method, goto.params)
            ctx = self._context(goto.url)
            res = await self._fetch(goto, ctx)
            failure, doc = self._check(res)
        if failure is not None:
            return await self._fatal(ctx, *failure)
        return await self._run_document(res, doc, ctx)

    @staticmethod
    def _check(res: AppResponse) -> tuple[tuple[int, str] | None, ParseResult | None]:
        """Why this response cannot run (fetch error or fatal parse problem), and its parse."""
        if res.error is not None:
            return (res.error, res.error_message), None
        if res.kind == "twiml":
            doc = parse(res.body)
            if doc.fatal is not None:
                return (doc.fatal.code, doc.fatal.message), doc
            return None, doc
        return None, None

    async def _run_document(self, res: AppResponse, doc: ParseResult | None, ctx: Context) -> Goto | Outcome:
        if res.kind == "audio":
            try:
                pcm = media.decode(res.body, res.content_type)
            except media.DecodeError as e:
                return await self._fatal(ctx, play.INVALID_CONTENT_TYPE, f"cannot decode {res.url}: {e}")
            await ctx.play(pcm)
            return await self._finish(ctx, "completed")
        if res.kind == "text":
            await ctx.play(await media.speak(res.text.strip()[:4096]))
            return await self._finish(ctx, "completed")
        assert doc is not None
        for problem in doc.warnings:
            await self._notify(ctx, problem.code, problem.message, WARNING)
        for verb in doc.verbs:
            if ctx.hung_up:
                return self._outcome("hung_up")
            step = await VERBS[type(verb)](verb, ctx)
            if isinstance(step, Goto):
                return step
            if isinstance(step, Fatal):
                return await self._fatal(ctx, step.code, step.message)
            if isinstance(step, End):
                if step.reason == "hangup":
                    await self.channel.hangup()
                    return self._outcome("hangup_verb")
                return self._outcome("hung_up")
        if ctx.hung_up:
            return self._outcome("hung_up")
        return await self._finish(ctx, "completed")

    async def _finish(self, ctx: Context, status: str) -> Outcome:
        if ctx.hung_up:
            return self._outcome("hung_up")
        if not self.whisper:
            await self.channel.hangup()
        return self._outcome(status)

    async def _fatal(self, ctx: Context, code: int, message: str) -> Outcome:
        await self._notify(ctx, code, message, ERROR)
        if not ctx.hung_up:
            with contextlib.suppress(Exception):  # the error prompt is best effort
                await self.channel.play(await media.speak(media.APPLICATION_ERROR_TEXT))
            await self.channel.hangup()
        return self._outcome("app_error", code)


async def run_whisper(channel: Channel, app: AppClient, url: str, method: str = "POST") -> bool:
    """Run a <Number url> document on the callee's leg; True to connect the
    parties, False when it hung up (declined) or failed."""
    outcome = await Interpreter(channel, app, url, method, whisper=True).run()
    return outcome.status == "completed" and not channel.hung_up.is_set()


async def run_wait_url(channel: Channel, app: AppClient, url: str, method: str = "POST") -> None:
    """Play a Conference waitUrl until cancelled: TwiML with only Play, Say and
    Redirect (13238 otherwise), or audio; refetched when it runs out."""
    goto = Goto(url, (method or "POST").upper())
    fetches = 0
    while not channel.hung_up.is_set():
        ctx = Context(channel, app, goto.url)
        params = dict(channel.params)
        params["CallStatus"] = "in-progress"
        res = await app.fetch(goto.url, goto.method, params)
        ctx.response = res
        fetches += 1
        played = False

        def mark() -> None:
            nonlocal played
            played = True

        ctx.on_audio = mark
        if res.error is not None:
            await ctx.error(res.error, res.error_message)
            break
        nxt: Goto | None = None
        if res.kind == "audio":
            try:
                await ctx.play(media.decode(res.body, res.content_type))
            except media.DecodeError as e:
                await ctx.error(13233, f"cannot decode waitUrl {res.url}: {e}")
                break
        elif res.kind == "text":
            await ctx.play(await media.speak(res.text.strip()[:4096]))
        else:
            doc = parse(res.body, wait_url=True)
            if doc.fatal is not None:
                await ctx.error(doc.fatal.code, doc.fatal.message)
                break
            for problem in doc.warnings:
                await ctx.notify(problem.code, problem.message)
            for verb in doc.verbs:
                step = await VERBS[type(verb)](verb, ctx)
                if isinstance(step, Goto):
                    nxt = step
                    break
                if channel.hung_up.is_set():
                    return
        if nxt is not None:
            goto = Goto(nxt.url, nxt.method)
        if played:
            fetches = 0
        elif fetches >= MAX_FETCHES_WITHOUT_AUDIO or not await ctx.sleep(1.0):
            break
    # Silence until the conference starts (the caller cancels us) or hangup.
    await channel.hung_up.wait()
