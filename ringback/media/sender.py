"""The media sender: a small process of its own that puts RTP packets on the wire on time.

Why a process. The media clock builds each 20 ms frame one tick ahead, but the moment a packet
leaves was still decided in the engine's process, where the clock thread shares the GIL with the
event loop (SIP, the dialer, webhooks, SQL). Every ``sendto`` released the GIL, and getting it
back from a busy loop could take a switch interval, so under API load packets left late: 0.2-9%
more than 5 ms off grid at 100 POST /Calls per second (bench/engine/bench_clock_under_load.py),
against 0% with media alone. A process has a GIL of its own: here nothing but sending runs, and
the kernel wakes it on time.

How. The clock (``ringback.media.clock``) keeps building frames in the engine, then ships each
phase group of a frame in one message, with the monotonic time it is due (``CLOCK_MONOTONIC`` is
shared by all processes of the machine), over a ``SOCK_SEQPACKET`` socket pair. The sessions'
UDP sockets are passed over once with ``SCM_RIGHTS``, so packets leave from the session's own
port (symmetric RTP) while the engine keeps receiving on it. Each slot carries a generation:
a packet built for a session that has since closed, its slot reused, is dropped, never sent from
the new session's socket.

Messages, engine to sender (each one datagram of the pair; integers little-endian):

    F slot gen            + one fd            adopt a session's socket
    D slot gen port host                      where the slot's packets go
    C slot gen                                forget the slot, close the socket copy
    G due n slots[n] gens[n] packets[n]       fixed-size audio packets, due at ``due``
    S due slot gen n lens[n] packets          variable-size packets (RFC 4733 events)
    ?                                         answer with a JSON object of counters
    Q                                         send what is pending, then exit

and sender to engine: ``R`` once it is ready, ``c slot gen`` once a forgotten socket is closed
(its port is free again), the JSON answer to ``?``.

This file imports the standard library only and runs as a script (``python sender.py FD``), so
the process starts in a few tens of milliseconds and holds no copy of the engine's modules.
"""

from __future__ import annotations

import array
import contextlib
import heapq
import json
import os
import select
import signal
import socket
import struct
import sys
import time

PACKET = 12 + 160  # one G.711 frame of 20 ms with its RTP header
# Receive buffer: one phase group of about 6,000 packets. Calls are spread over ten phase groups
# (by SSRC), so that is some 60,000 calls, far past what one node carries (--max-calls).
MAX_MESSAGE = 1 << 20
SOCKET_BUFFER = 4 << 20
SLOW = 0.002  # a group sent this long after its time counts as slow (the grid allows 5 ms)
# Scheduling asked for at start (see _take_priority); without the permission it runs as it is.
DEFAULT_RT = 1
NICE = -10

HDR_SLOT = struct.Struct("<II")
HDR_DEST = struct.Struct("<IIH")
HDR_GROUP = struct.Struct("<dI")
HDR_SLOW = struct.Struct("<dIII")


# -- message building (used by the engine's clock)

def adopt_message(slot: int, gen: int) -> bytes:
    return b"F" + HDR_SLOT.pack(slot, gen)


def dest_message(slot: int, gen: int, dest: tuple[str, int]) -> bytes:
    return b"D" + HDR_DEST.pack(slot, gen, dest[1]) + dest[0].encode()


def forget_message(slot: int, gen: int) -> bytes:
    return b"C" + HDR_SLOT.pack(slot, gen)


def group_message(due: float, slots: bytes, gens: bytes, packets: bytes) -> bytes:
    """``slots`` and ``gens`` are arrays of uint32, ``packets`` that many PACKET-byte rows."""
    n = len(slots) // 4
    return b"".join((b"G", HDR_GROUP.pack(due, n), slots, gens, packets))


def slow_message(due: float, slot: int, gen: int, packets: list[bytes]) -> bytes:
    lens = struct.pack(f"<{len(packets)}H", *(len(p) for p in packets))
    return b"".join((b"S", HDR_SLOW.pack(due, slot, gen, len(packets)), lens, *packets))


# -- the process

class Sender:
    """The sender's state, fed messages and time; ``run`` wraps it around the socket."""

    def __init__(self) -> None:
        # slot -> [gen, socket, dest]
        self.slots: dict[int, list[object]] = {}
        self.pending: list[tuple[float, int, bytes]] = []  # heap of (due, order, message)
        self._order = 0
        self.sent = 0
        self.errors = 0
        self.stale = 0  # packets for a slot that was forgotten or reused meanwhile
        self.late = 0  # groups that arrived after their due time (the engine's tick ran late)
        self.max_late = 0.0
        self.slow = 0  # groups this process sent more than SLOW after their due time
        self.max_slow = 0.0

    def handle(self, msg: bytes, fds: list[int], now: float) -> bytes | None:
        """Apply one message; returns the reply to send, if any (b"" when asked to stop)."""
        kind = msg[:1]
        if kind in (b"G", b"S"):
            due = HDR_GROUP.unpack_from(msg, 1)[0]
            if due <= now:
                if now - due > 0.001:
                    self.late += 1
                    self.max_late = max(self.max_late, now - due)
                self._send(msg)
            else:
                self._order += 1
                heapq.heappush(self.pending, (due, self._order, msg))
        elif kind == b"F":
            slot, gen = HDR_SLOT.unpack_from(msg, 1)
            for fd in fds[1:]:
                os.close(fd)
            if not fds:
                return None
            self._close(slot)
            self.slots[slot] = [gen, socket.socket(fileno=fds[0]), None]
        elif kind == b"D":
            slot, gen, port = HDR_DEST.unpack_from(msg, 1)
            entry = self.slots.get(slot)
            if entry is not None and entry[0] == gen:
                entry[2] = (msg[1 + HDR_DEST.size:].decode(), port)
        elif kind == b"C":
            slot, gen = HDR_SLOT.unpack_from(msg, 1)
            entry = self.slots.get(slot)
            if entry is not None and entry[0] == gen:
                self._close(slot)
            return b"c" + msg[1:1 + HDR_SLOT.size]
        elif kind == b"?":
            return json.dumps(self.stats()).encode()
        elif kind == b"Q":
            self.flush()
            print(f"ringback media sender: {json.dumps(self.stats())}", file=sys.stderr, flush=True)
            return b""
        return None

    def due(self, now: float) -> None:
        """Send every message whose time has come."""
        pending = self.pending
        while pending and pending[0][0] <= now:
            due, _, msg = heapq.heappop(pending)
            if now - due > SLOW:  # this process did not get the CPU in time
                self.slow += 1
                self.max_slow = max(self.max_slow, now - due)
            self._send(msg)

    def flush(self) -> None:
        while self.pending:
            self._send(heapq.heappop(self.pending)[2])

    def next_due(self) -> float | None:
        return self.pending[0][0] if self.pending else None

    def stats(self) -> dict[str, float | int]:
        return {"sockets": len(self.slots), "sent": self.sent, "errors": self.errors, "stale": self.stale,
                "late_groups": self.late, "max_late_ms": round(self.max_late * 1000, 3),
                "slow_groups": self.slow, "max_slow_ms": round(self.max_slow * 1000, 3),
                "pending": len(self.pending)}

    def close(self) -> None:
        for slot in list(self.slots):
            self._close(slot)

    def _close(self, slot: int) -> None:
        entry = self.slots.pop(slot, None)
        if entry is not None:
            entry[1].close()  # type: ignore[attr-defined]

    def _send(self, msg: bytes) -> None:
        slots = self.slots
        mv = memoryview(msg)
        if msg[:1] == b"G":
            n = HDR_GROUP.unpack_from(msg, 1)[1]
            off = 1 + HDR_GROUP.size
            ids = array.array("I")
            ids.frombytes(mv[off:off + 4 * n])
            gens = array.array("I")
            gens.frombytes(mv[off + 4 * n:off + 8 * n])
            if sys.byteorder != "little":
                ids.byteswap()
                gens.byteswap()
            off += 8 * n
            sent = 0
            for slot, gen in zip(ids, gens, strict=True):
                entry = slots.get(slot)
                if entry is None or entry[0] != gen or entry[2] is None:
                    self.stale += 1
                else:
                    try:
                        entry[1].sendto(mv[off:off + PACKET], entry[2])  # type: ignore[attr-defined]
                        sent += 1
                    except OSError:  # a full buffer or an unreachable peer: this frame is lost
                        self.errors += 1
                off += PACKET
            self.sent += sent
        else:
            _, slot, gen, n = HDR_SLOW.unpack_from(msg, 1)
            entry = slots.get(slot)
            if entry is None or entry[0] != gen or entry[2] is None:
                self.stale += n
                return
            off = 1 + HDR_SLOW.size
            lens = struct.unpack_from(f"<{n}H", msg, off)
            off += 2 * n
            for size in lens:
                try:
                    entry[1].sendto(mv[off:off + size], entry[2])  # type: ignore[attr-defined]
                    self.sent += 1
                except OSError:
                    self.errors += 1
                off += size


def _take_priority(rt_priority: int) -> None:
    """Real-time priority (SCHED_RR) when allowed, else a lower nice value, else as it is.

    The process sleeps between groups and must have the CPU within a millisecond or two when one
    falls due: at normal priority on a busy 2-core host it was up to 6 ms late, and 0.1% of
    packets left more than 5 ms off grid (bench/engine/bench_clock_under_load.py). A process that
    only sends what it is given cannot starve the machine (and the kernel's RT throttling bounds
    it anyway), so it asks by default, at priority DEFAULT_RT or the operator's --rt-priority.
    """
    prio = rt_priority or DEFAULT_RT
    if hasattr(os, "sched_setscheduler"):
        try:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(prio))
            return
        except OSError as exc:
            if rt_priority:  # asked for by the operator: say it was refused
                print(f"ringback media sender: real-time priority {rt_priority} refused ({exc})", file=sys.stderr)
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, NICE)


def run(ctrl: socket.socket, rt_priority: int = 0) -> None:
    """Serve the engine's messages until it says Q or goes away."""
    # A terminal's ^C or a service manager's SIGTERM reaches the whole process group: the
    # engine then ends its calls and says Q; this process must outlive it until then.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _take_priority(rt_priority)
    sender = Sender()
    ctrl.send(b"R")
    ctrl.setblocking(False)
    fd_space = socket.CMSG_SPACE(4 * 4)
    buf = bytearray(MAX_MESSAGE)  # received into, then copied out at its size (no 1 MiB per message)
    view = memoryview(buf)
    try:
        while True:
            nxt = sender.next_due()
            timeout = None if nxt is None else max(0.0, nxt - time.monotonic())
            readable, _, _ = select.select([ctrl], [], [], timeout)
            if readable:
                while True:  # everything queued: the engine sends a frame as up to ten messages
                    try:
                        size, anc, _flags, _addr = ctrl.recvmsg_into([buf], fd_space)
                    except (BlockingIOError, InterruptedError):
                        break
                    if not size:
                        return  # the engine closed its end (or died)
                    msg = bytes(view[:size])
                    fds: list[int] = []
                    for level, typ, data in anc:
                        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                            fds.extend(array.array("i", data[: len(data) - len(data) % 4]))
                    reply = sender.handle(msg, fds, time.monotonic())
                    if reply == b"":
                        return
                    if reply is not None:
                        with contextlib.suppress(BlockingIOError):  # the engine is not reading: it
                            ctrl.send(reply)  # waits for no reply but with a timeout
            sender.due(time.monotonic())
    except (ConnectionResetError, BrokenPipeError):
        return
    finally:
        sender.close()


if __name__ == "__main__":
    run(socket.socket(fileno=int(sys.argv[1])), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
