"""The engine's end of the media sender (``ringback/media/sender.py`` says why it exists).

The clock thread and the event loop both write to the link (membership changes come from the
loop, under the clock's lock; frames from the clock thread), never at the same time. Writes
never block: the socket is non-blocking with a buffer of several seconds of packets, and a
group that does not fit is dropped and counted (the sender is stuck; waiting would stop the
clock). The sender's few replies (a socket closed, counters) are read on the event loop. When
the sender is gone, ``broken`` turns true and the clock sends from its own thread again: a call
never goes silent because the helper died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path

from ringback.media import sender as wire

log = logging.getLogger(__name__)

START_TIMEOUT = 5.0
STOP_TIMEOUT = 2.0
REPLY_TIMEOUT = 2.0


class SenderLink:
    """Starts the sender process and talks to it; create and close it on the event loop."""

    def __init__(self, rt_priority: int = 0) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (ours, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, wire.SOCKET_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wire.SOCKET_BUFFER)
        try:
            # run as a script by path: it imports the standard library only, so it starts fast
            self.proc = subprocess.Popen(
                [sys.executable, "-s", str(Path(wire.__file__)), str(theirs.fileno()), str(rt_priority)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        self.broken = False
        self.dropped = 0  # messages the sender had no room for
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._released: dict[bytes, asyncio.Future[None]] = {}
        self._answers: list[asyncio.Future[dict[str, float | int]]] = []
        # wait for "R": frames shipped before it runs would arrive late
        ready = select.select([ours], [], [], START_TIMEOUT)[0] and ours.recv(16) == b"R"
        if not ready:
            self.close()
            raise OSError("the media sender did not start")
        ours.setblocking(False)
        self._loop.add_reader(ours.fileno(), self._readable)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def adopt(self, slot: int, gen: int, fd: int) -> None:
        self._send(wire.adopt_message(slot, gen), fd)

    def dest(self, slot: int, gen: int, dest: tuple[str, int]) -> None:
        self._send(wire.dest_message(slot, gen, dest))

    def forget(self, slot: int, gen: int) -> asyncio.Future[None] | None:
        """Tell the sender to close its copy of a slot's socket; the future is done once it has
        (the session's port is free again). None when not called on the event loop."""
        msg = wire.forget_message(slot, gen)
        if not self._send(msg) or threading.get_ident() != self._loop_thread:
            return None
        fut = self._released.get(msg[1:])
        if fut is None:
            fut = self._released[msg[1:]] = self._loop.create_future()
        return fut

    def ship(self, msg: bytes) -> bool:
        """Hand over one group or event message; False when the link has failed."""
        return self._send(msg)

    async def stats(self) -> dict[str, float | int]:
        """The sender's counters, once it has handled every message sent before; {} when it is
        gone (a round trip: for tests and diagnostics, not the hot path)."""
        if not self._send(b"?"):
            return {}
        fut: asyncio.Future[dict[str, float | int]] = self._loop.create_future()
        self._answers.append(fut)
        try:
            return await asyncio.wait_for(fut, REPLY_TIMEOUT)
        except TimeoutError:
            self.fail(f"no answer within {REPLY_TIMEOUT} s")
            return {}

    async def sync(self) -> None:
        """Return once the sender has closed every socket it was told to forget.

        A forgotten session's port stays bound until the sender drops its copy of the socket,
        normally within a millisecond; a port range used up by fast churn waits for that here.
        """
        await self.stats()

    def close(self) -> None:
        """Let the sender send what it holds and exit; kill it if it does not, or if it was
        given up on already (stuck: waiting would block the event loop for nothing)."""
        stuck = self.broken
        if not stuck:
            with contextlib.suppress(BlockingIOError, OSError):
                self._sock.setblocking(True)
                self._sock.settimeout(STOP_TIMEOUT)
                self._sock.send(b"Q")
        self.fail("")
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        if stuck and self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.error("media sender %d did not stop; killing it", self.proc.pid)
            self.proc.kill()
            self.proc.wait()

    def _readable(self) -> None:
        while True:
            try:
                msg = self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.fail(str(exc))
                return
            if not msg:
                self.fail("it exited")
                return
            if msg[:1] == b"c":
                fut = self._released.pop(msg[1:], None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif msg[:1] == b"{" and self._answers:
                fut2 = self._answers.pop(0)
                if not fut2.done():
                    fut2.set_result(json.loads(msg))

    def _send(self, msg: bytes, fd: int | None = None) -> bool:
        if self.broken:
            return False
        try:
            if fd is None:
                self._sock.send(msg)
            else:
                socket.send_fds(self._sock, [msg], [fd])
            return True
        except BlockingIOError:
            self.dropped += 1
            if fd is not None:  # a socket it never got would leave the call silent: stop using it
                self.fail("no room for a socket")
                return False
            return True
        except OSError as exc:  # EPIPE/ECONNRESET: the sender died
            self.fail(str(exc))
            return False

    def fail(self, why: str) -> None:
        """Stop using the sender (it died, or did not answer in time): the clock sends again
        itself. An empty ``why`` is a normal close and is not logged."""
        if not self.broken and why:
            log.error("media sender %d failed (%s); the clock sends from its own thread", self.proc.pid, why)
        self.broken = True
        # nobody waits forever on a sender that is gone (callbacks run on the loop's thread)
        if threading.get_ident() == self._loop_thread:
            self._wake_waiters()
        else:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake_waiters)

    def _wake_waiters(self) -> None:
        for fut in self._released.values():
            if not fut.done():
                fut.set_result(None)
        self._released.clear()
        for fut2 in self._answers:
            if not fut2.done():
                fut2.set_result({})
        self._answers.clear()


def available() -> bool:
    return hasattr(socket, "send_fds") and hasattr(socket, "SOCK_SEQPACKET") and os.name == "posix"
