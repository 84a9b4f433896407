"""Keep numpy's BLAS single-threaded in a process that runs the media clock.

OpenBLAS goes multi-threaded for a matrix product as small as the DTMF
Goertzel bank of ~250 calls ((n, 102) @ (102, 16)); its helper threads spin
while they wait. On a two-core machine, with the process pinned to one core,
that turned a 0.7 ms tick of DTMF detection for 1,000 calls into 7 ms of CPU
and 16 ms of wall time, and was half of why the media clock fell behind at
1,000 calls. Every product the media path does is small, so one thread is
always the right choice here.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

# names of the thread-count setter in the OpenBLAS builds numpy ships or links
_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
    "goto_set_num_threads",
)

_done = False


def _blas_libraries() -> list[str]:
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if ".so" in p)


def limit_blas_threads() -> bool:
    """Set every loaded OpenBLAS to one thread (once per process); True if one was found."""
    global _done
    if _done:
        return True
    import numpy  # noqa: F401  (loads the BLAS library whose threads we limit)

    found = False
    for path in _blas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                fn.restype = None
                fn(1)
                found = True
                break
    if not found:
        log.debug("no OpenBLAS thread setter found; BLAS threading left as it is")
    _done = True
    return found
