"""What a verb sees while it runs, and what it may ask the interpreter to do next."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from ringback.twiml.channel import ERROR, WARNING, Channel, Notification, Pcm

if TYPE_CHECKING:
    from ringback.engine.webhooks import AppClient, AppResponse


@dataclass(frozen=True)
class Goto:
    """Request `url` next and run what it returns.  With `after_hangup`, the
    caller has gone: the request carries CallStatus=completed and its response
    is ignored (Record and Dial actions, as Twilio did)."""

    url: str
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)
    after_hangup: bool = False


@dataclass(frozen=True)
class End:
    """Stop the document: `hangup` for <Hangup/>, `hung_up` when the caller left."""

    reason: str


@dataclass(frozen=True)
class Fatal:
    code: int
    message: str


Step = Goto | End | Fatal | None


@dataclass
class Context:
    channel: Channel
    app: AppClient
    doc_url: str  # the current document's URL (base for relative URLs)
    response: AppResponse | None = None  # the current document's response (for notifications)
    on_audio: Callable[[], None] = lambda: None
    notifications: list[Notification] = field(default_factory=list)

    @property
    def hung_up(self) -> bool:
        return self.channel.hung_up.is_set()

    def resolve(self, url: str | None) -> str:
        """Relative action/Redirect/Play URLs resolve against the current document."""
        return self.doc_url if not url else urljoin(self.doc_url, url)

    async def notify(self, code: int, message: str, *, log: int = WARNING) -> None:
        r = self.response
        n = Notification(
            code=code,
            message=message,
            log=log,
            request_url=r.request_url if r else self.doc_url,
            request_method=r.request_method if r else "",
            request_variables=r.request_variables_text() if r else "",
            response_headers=r.response_headers_text() if r else "",
            response_body=r.text if r else "",
        )
        self.notifications.append(n)
        with contextlib.suppress(Exception):  # persisting a notification must not break the call
            await self.channel.notify(n)

    async def error(self, code: int, message: str) -> None:
        await self.notify(code, message, log=ERROR)

    async def play(self, pcm: Pcm, interruptible: bool = False) -> str | None:
        if pcm.size:
            self.on_audio()
        return await self.channel.play(pcm, interruptible)

    async def sleep(self, seconds: float) -> bool:
        """Wait, unless the caller hangs up first (then False)."""
        try:
            await asyncio.wait_for(self.channel.hung_up.wait(), seconds)
        except TimeoutError:
            return True
        return False
