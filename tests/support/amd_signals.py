"""Feeding a whole signal through the production AMD detector, frame by frame, as the engine does."""

from __future__ import annotations

import numpy as np

from ringback.amd import AmdParams, Detector


def detect(x: np.ndarray, params: AmdParams | None = None) -> tuple[Detector, list[object]]:
    """Feed int16 audio at 8 kHz in 20 ms frames until the detector is done; every event it raised."""
    det = Detector(params)
    events: list[object] = []
    for i in range(x.size // 160):
        ev = det.feed(x[i * 160 : (i + 1) * 160])
        while ev is not None:
            events.append(ev)
            ev = det.next_event()
        if det.done:
            break
    return det, events
