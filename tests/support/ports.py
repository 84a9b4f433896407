"""Free loopback ports for tests (never the defaults)."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_range(width: int = 200) -> tuple[int, int]:
    """A UDP port range starting at a port that was free just now (for a MediaEngine)."""
    lo = min(free_port(socket.SOCK_DGRAM), 65535 - width)
    return lo, lo + width
