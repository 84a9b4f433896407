"""Media through a bad network (issue 6 item 7): 5% loss, some reordering, up to 60 ms of jitter.

Two RTP sessions talk through ``udp_relay.ImpairedRelay``; each sees the relay
as its peer (symmetric RTP latches onto it). Audio must keep flowing (checked
by correlation with what was sent), and every digit must arrive exactly once,
by RFC 4733 and in-band.
"""

import asyncio
import os

import numpy as np
import pytest

from ringback.media.engine import MediaEngine
from tests.media.udp_relay import ImpairedRelay
from tests.support.ports import free_range

DIGITS = "0123456789*#"



@pytest.fixture
async def bad_pair():
    eng = MediaEngine("127.0.0.1", free_range(), rtp_timeout=30)
    await eng.start()
    relay = ImpairedRelay(drop=0.05, jitter=0.06, reorder=0.05, seed=int(os.environ.get("RB_RELAY_SEED", "11")))
    port_a, port_b = await relay.start()
    a = await eng.open_session()
    b = await eng.open_session()
    relay.set_peers(("127.0.0.1", a.local_port), ("127.0.0.1", b.local_port))

    def connect(te: int | None) -> None:
        a.set_remote("127.0.0.1", port_a, 0, te)
        b.set_remote("127.0.0.1", port_b, 0, te)

    yield a, b, relay, connect
    relay.close()
    await eng.close()


def _speechlike(ms: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, ms * 8)
    env = np.abs(np.sin(np.arange(ms * 8) / 8000 * 2 * np.pi * 3))  # 3 Hz syllables
    x = np.convolve(noise, np.hanning(9), "same") * env
    return (x / np.abs(x).max() * 8000).astype(np.int16)


def _frames_intact(heard: np.ndarray, ref: np.ndarray, slack: int = 800) -> float:
    """Share of the reference's 20 ms frames heard intact (normalised correlation > 0.9).

    Each frame is looked for within +-100 ms of where the whole signal lines up best,
    so jitter-buffer re-anchoring (a shift of whole frames) does not matter; a lost
    frame, concealed by repeating the one before, does not match.
    """
    h = heard.astype(float)
    r = ref.astype(float)
    c = np.correlate(h, r[:3200], "valid")
    offset = int(np.argmax(c))
    good = total = 0
    for i in range(0, len(r) - 160 + 1, 160):
        frame = r[i : i + 160]
        if np.dot(frame, frame) < 160 * 300**2:  # near-silent frames carry no evidence
            continue
        total += 1
        lo = max(0, offset + i - slack)
        seg = h[lo : offset + i + 160 + slack]
        if len(seg) < 160:
            continue
        cc = np.correlate(seg, frame, "valid")
        e = np.convolve(seg * seg, np.ones(160), "valid")
        if (cc / np.sqrt(np.dot(frame, frame) * e + 1e-9)).max() > 0.9:
            good += 1
    return good / max(1, total)


async def test_audio_keeps_flowing_both_ways(bad_pair):
    a, b, relay, connect = bad_pair
    connect(None)
    heard_a: list[np.ndarray] = []
    heard_b: list[np.ndarray] = []
    a.add_tap(lambda f, now: heard_a.append(f))
    b.add_tap(lambda f, now: heard_b.append(f))
    sa, sb = _speechlike(1600, 5), _speechlike(1600, 6)
    await asyncio.gather(a.play(sa), b.play(sb))
    await asyncio.sleep(0.2)
    hurt = 0
    for heard, ref, rx in ((heard_b, sa, b), (heard_a, sb, a)):
        intact = _frames_intact(np.concatenate(heard), ref)
        st = rx.stats["rx"]
        # 5% of packets dropped (a seeded 4-9% in 80 packets): the rest arrive intact and in order
        assert intact > 0.85, (intact, st)
        assert st["received"] > 65  # of ~80 sent in 1.6 s
        hurt += st["lost"] + st["late"] + st["concealed"]
    assert hurt > 0  # the impairment really happened
    assert relay.stats["a"].dropped + relay.stats["b"].dropped > 0 and relay.stats["a"].held > 0
    assert max(relay.stats["a"].delays) > 0.04


async def _collect(session, n: int) -> str:
    got = ""
    for _ in range(n):
        d = await session.next_digit(1.0)
        assert d is not None, got
        got += d
    return got


async def test_rfc4733_digits_exactly_once_both_ways(bad_pair):
    a, b, relay, connect = bad_pair
    connect(120)
    await asyncio.sleep(0.1)
    back = "ABCD#*DCBA"
    _, _, got_b, got_a = await asyncio.gather(a.send_digits(DIGITS), b.send_digits(back),
                                              _collect(b, len(DIGITS)), _collect(a, len(back)))
    assert got_b == DIGITS and got_a == back
    assert await b.next_digit(0.3) is None and await a.next_digit(0.01) is None  # none twice
    assert b.stats["digits"]["rfc4733"] == len(DIGITS) and a.stats["digits"]["rfc4733"] == len(back)
    assert relay.stats["a"].dropped > 0 and relay.stats["b"].dropped > 0


async def test_inband_digits_exactly_once(bad_pair):
    a, b, relay, connect = bad_pair
    connect(None)  # no telephone-event: send_digits plays tones
    await asyncio.sleep(0.1)
    got, _ = await asyncio.gather(_collect(b, len(DIGITS)), a.send_digits(DIGITS))
    assert got == DIGITS
    assert await b.next_digit(0.3) is None
    assert b.stats["digits"]["inband"] == len(DIGITS)
    assert relay.stats["a"].dropped > 0
