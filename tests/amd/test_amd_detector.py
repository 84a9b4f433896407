import numpy as np
import pytest

import ringback.tts as tts
from ringback.amd import AmdParams, Detector, DetectorBank, GreetingEnd, Verdict
from tests.support.amd_signals import detect

SR = 8000


def sil(s: float) -> np.ndarray:
    return np.zeros(int(s * SR), np.int16)


def tone(freqs: tuple[float, ...], s: float, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(int(s * SR)) / SR
    return (sum(np.sin(2 * np.pi * f * t) for f in freqs) * amp / len(freqs)).astype(np.int16)


def speech(text: str, **kw: object) -> np.ndarray:
    return np.array(tts.synth(text, **kw))  # type: ignore[arg-type]


def run(x: np.ndarray, params: AmdParams | None = None) -> tuple[Detector, list[object]]:
    x = np.concatenate([x, sil(10)])
    return detect(x, params)


GREETING = "Hi, you've reached John. I can't come to the phone right now. Please leave a message after the tone."


@pytest.mark.parametrize("text", ["Hello?", "Yeah?", "Hi, this is Dana."])
def test_person_is_human_quickly(text: str) -> None:
    x = np.concatenate([sil(0.3), speech(text)])
    det, events = run(x)
    assert det.answered_by == "human"
    assert isinstance(events[0], Verdict) and events[0].cause == "short-greeting"
    assert events[0].decided_at < x.size / SR + 1.0  # within a second of the end of the phrase
    assert len(events) == 1 and det.done


def test_hello_pause_hello_is_human() -> None:
    x = np.concatenate([sil(0.4), speech("Hello?"), sil(1.5), speech("Hello?")])
    det, _ = run(x)
    assert det.answered_by == "human"


def test_machine_with_beep_reports_beep_end_within_300ms() -> None:
    g = speech(GREETING)
    x = np.concatenate([sil(0.4), g, sil(0.6), tone((1000.0,), 0.4)])
    true_end = x.size / SR
    det, events = run(x)
    assert det.answered_by == "machine"
    assert isinstance(events[-1], GreetingEnd) and events[-1].kind == "beep"
    assert abs(events[-1].at - true_end) <= 0.3
    assert 0 <= events[-1].decided_at - true_end <= 0.3
    assert det.beep_end_s == events[-1].at


def test_short_greeting_then_beep_is_machine_by_beep() -> None:
    x = np.concatenate([sil(0.3), speech("Leave a message."), sil(0.3), tone((800.0,), 0.3)])
    det, events = run(x)
    assert det.answered_by == "machine"
    assert [type(e) for e in events] == [Verdict, GreetingEnd]


def test_machine_without_beep_ends_on_silence() -> None:
    g = speech(GREETING)
    x = np.concatenate([sil(0.4), g])
    det, events = run(x)
    assert det.answered_by == "machine"
    ge = events[-1]
    assert isinstance(ge, GreetingEnd) and ge.kind == "silence"
    assert abs(ge.at - x.size / SR) < 0.3
    assert ge.decided_at - ge.at == pytest.approx(AmdParams().greeting_end_silence_ms / 1000, abs=0.05)


def test_silence_is_unknown() -> None:
    det, events = run(sil(6))
    assert det.answered_by == "unknown"
    assert events[0].decided_at == pytest.approx(AmdParams().initial_silence_ms / 1000)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "signal",
    [
        tone((440.0, 480.0), 2.0),  # ringback
        tone((350.0, 440.0), 1.0),  # dial tone
        tone((480.0, 620.0), 0.5),  # busy
        tone((1100.0,), 0.5),  # fax CNG
        tone((2100.0,), 3.0),  # fax CED (also too long)
        np.concatenate([tone((697.0, 1209.0), 0.1), sil(0.1), tone((941.0, 1477.0), 0.1)]),  # DTMF 1, #
        np.concatenate([tone((913.8,), 0.274), tone((1370.6,), 0.274), tone((1776.7,), 0.38)]),  # SIT
        tone((1000.0,), 2.5),  # a continuous tone, too long for a beep
    ],
    ids=["ringback", "dial", "busy", "cng", "ced", "dtmf", "sit", "long"],
)
def test_no_false_beep_on_tones(signal: np.ndarray) -> None:
    # The tone comes after a machine greeting, so the detector is listening for a beep.
    x = np.concatenate([sil(0.3), speech(GREETING), sil(0.5), signal])
    det, events = run(x)
    assert det.answered_by == "machine"
    ge = events[-1]
    assert isinstance(ge, GreetingEnd) and ge.kind != "beep"


@pytest.mark.parametrize("hz", [300.0, 450.0, 1000.0, 1400.0, 2450.0])
@pytest.mark.parametrize("dur", [0.1, 0.5, 1.5])
def test_beep_frequencies_and_lengths(hz: float, dur: float) -> None:
    x = np.concatenate([sil(0.3), speech(GREETING), sil(0.4), tone((hz,), dur, 4000.0)])
    det, events = run(x)
    ge = events[-1]
    assert isinstance(ge, GreetingEnd) and ge.kind == "beep"
    assert abs(ge.at - x.size / SR) <= 0.3


def test_ringback_before_person_is_not_speech() -> None:
    x = np.concatenate([tone((440.0, 480.0), 2.0, 6000.0), sil(0.5), speech("Hello?")])
    det, _ = run(x)
    assert det.answered_by == "human"
    assert det.verdict is not None and det.verdict.decided_at > 2.5


def test_noise_alone_is_not_speech() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(SR * 7) * 600).astype(np.int16)
    det, _ = run(x)
    assert det.answered_by == "unknown"


def test_params_override_changes_behaviour() -> None:
    x = np.concatenate([sil(0.3), speech("Hello?")])
    # Absolute silences only (the rate-relative parts off), for both tiers "Hello?" may fall in.
    def p(ms: int) -> AmdParams:
        return AmdParams(human_silence_ms=ms, human_mid_silence_ms=ms, human_silence_periods=0.0,
                         human_mid_silence_periods=0.0)

    fast, _ = run(x, p(300))
    slow, _ = run(x, p(1200))
    assert fast.verdict is not None and slow.verdict is not None
    assert slow.verdict.decided_at - fast.verdict.decided_at == pytest.approx(0.9, abs=0.05)


def test_bank_matches_single_detectors() -> None:
    clips = [
        np.concatenate([sil(0.3), speech("Hello?"), sil(8)]),
        np.concatenate([sil(0.3), speech(GREETING), sil(0.5), tone((1000.0,), 0.3), sil(4)]),
    ]
    n = min(c.size for c in clips) // 160
    singles = [Detector() for _ in clips]
    bank_dets = [Detector() for _ in clips]
    bank = DetectorBank()
    bank_events: list[tuple[int, object]] = []
    single_events: list[tuple[int, object]] = []
    for k in range(n):
        frames = np.stack([c[k * 160 : (k + 1) * 160] for c in clips])
        bank_events += bank.feed(bank_dets, frames)
        for i, d in enumerate(singles):
            ev = d.feed(frames[i])
            while ev is not None:
                single_events.append((i, ev))
                ev = d.next_event()
    assert bank_events == single_events
    assert {i for i, _ in bank_events} == {0, 1}


def test_finish_settles_unknown() -> None:
    det = Detector()
    det.feed(sil(0.02))
    v = det.finish()
    assert v.answered_by == "unknown" and det.done


def test_bank_with_changing_calls_matches_single_detectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the engine feeds it: calls join late and leave once done, and in noise some frames need the
    band flatness (their rules run after the others'); every call's events must be what it gets alone."""
    import ringback.amd.detector as detector_mod

    rng = np.random.default_rng(7)

    def noisy(x: np.ndarray, amp: float) -> np.ndarray:
        return np.clip(x + rng.normal(0.0, amp, x.size), -32768, 32767).astype(np.int16)

    clips = [
        noisy(np.concatenate([sil(0.3), speech("Hello?"), sil(3)]), 300.0),
        noisy(np.concatenate([sil(0.2), speech(GREETING), sil(0.5), tone((1000.0,), 0.3), sil(3)]), 600.0),
        noisy(np.concatenate([sil(0.5), speech("Hi, this is Dana."), sil(3)]), 900.0),
    ]
    joins = [0, 7, 13]  # ticks at which each call is answered
    filled: list[int] = []
    real_fill = detector_mod.fill_band_flatness
    monkeypatch.setattr(detector_mod, "fill_band_flatness", lambda f, rows: (filled.append(rows.size), real_fill(f, rows)))
    singles = [Detector() for _ in clips]
    single_events: list[list[object]] = [[] for _ in clips]
    for i, (c, d) in enumerate(zip(clips, singles, strict=True)):
        for fr in c[: c.size // 160 * 160].reshape(-1, 160):
            ev = d.feed(fr)
            while ev is not None:
                single_events[i].append(ev)
                ev = d.next_event()
            if d.done:
                break
    bank, dets = DetectorBank(), [Detector() for _ in clips]
    bank_events: list[list[object]] = [[] for _ in clips]
    for k in range(max(j + c.size // 160 for j, c in zip(joins, clips, strict=True))):
        live = [i for i, (j, c, d) in enumerate(zip(joins, clips, dets, strict=True))
                if j <= k < j + c.size // 160 and not d.done]
        if not live:
            continue
        frames = np.stack([clips[i][(k - joins[i]) * 160 : (k - joins[i] + 1) * 160] for i in live])
        for j, ev in bank.feed([dets[i] for i in live], frames):
            bank_events[live[j]].append(ev)
    assert bank_events == single_events
    assert all(single_events) and sum(filled) > 0
