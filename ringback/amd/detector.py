"""The production answering-machine detector: sans-IO, fed one 20 ms frame at a time.

Usage (one call)::

    det = Detector(AmdParams())
    for frame in frames:                 # int16, 160 samples, from the moment of answer
        ev = det.feed(frame)
        while ev is not None:
            handle(ev)                   # Verdict first; for machines later a GreetingEnd
            ev = det.next_event()
        if det.done:
            break

``DetectorBank`` feeds many calls' frames in one numpy pass per tick (the shared media clock).

How it decides (every number is an ``AmdParams`` field):
- Features (``features.frame_features``): the spectrum only for frames loud enough to be a tone or
  speech (``spectral_floor``); the quiet rest of a call costs no FFT. Within it, the peak frequency
  and envelope test only where the purity passes, and the speech band's flatness only where the
  voice decision needs it (``_needs_band_flatness``).
- Voice activity, in the 300-3400 Hz speech band (rumble, hum and brown noise lie below it):
  frame level above an absolute floor and the band ``vad_snr_db`` above its own minimum-statistics
  noise floor, or ``vad_voiced_snr_db`` above it when the band is voiced (local spectral flatness
  under ``vad_voiced_max_flatness``: harmonics, which steady noise has not); frames of a sounding tone (two or more frames holding one frequency) or of a dual
  tone (``dual_tone_min_ms`` at a level steady within ``dual_tone_max_step_db``: a high voice's
  vowel has two strong harmonics too, but its level moves) are not speech; runs shorter than
  ``min_speech_run_ms`` are ignored and gaps under ``speech_hangover_ms`` bridged. A run long
  enough starts speech only at a voiced frame (``voicing.periodicity`` at least
  ``vad_min_periodicity``: a pitch pulse train, which noise bursts, clicks and knocks have not), or
  once it lasts ``vad_unvoiced_run_ms`` (whisper, creak), or when it starts within
  ``vad_voicing_gap_ms`` of the last speech (the next word); the periodicity is measured only for
  those onset frames, batched across calls in ``DetectorBank``. Once speech has
  started, ``vad_hold_snr_db`` over the floor continues it for up to ``vad_hold_ms`` after the
  last frame that passed the full test (word tails in noise).
- Every pause rule is relative to the speaker's own pace, the syllable period (voiced ms per
  syllable nucleus so far, shrunk towards ``rate_prior_period_ms``; ``syllable_period_ms``), with a
  floor in ms: slow and fast speakers are judged alike. People answer with something short and
  then wait: silence after speech -> human, the silence needed (``human_*silence_periods`` periods,
  at least ``human_*silence_ms``) growing with the syllables said (``human_short_syllables`` /
  ``human_mid_syllables``, none from ``human_max_syllables``), and the long one after any pause
  between sentences. Machines read sentences and talk on: two sentence pauses
  (``sentence_pause_periods``..``utterance_gap_periods``) in the first utterance, one plus
  ``machine_sentence_syllables``, ``machine_syllables`` syllable nuclei (how much was
  said, whatever the speaking rate, so slow speakers are not judged by the clock; counted on the
  speech band's level clamped at its noise floor + ``syllable_floor_margin_db``), the backstops
  ``machine_speech_ms`` of speech or an utterance of ``machine_utterance_ms``, more than
  ``max_words`` words, a SIT sequence, or a beep -> machine.
  No verdict from silence while a tone sounds or awaits confirmation (a late beep wins).
  Nothing heard for ``initial_silence_ms`` -> unknown; budget ``total_analysis_ms``.
- Beeps (``beep.BeepTracker``): one pure, flat peak that holds its frequency frame to frame
  (``beep_max_step_hz``; held vowels glide) and its level (``beep_steady_db``; a knock's ringing
  partial dies away), then quiet. A tone that starts right where other
  sound stops (``beep_min_gap_ms``) must be ``beep_attached_min_ms`` long and be followed by
  ``beep_attached_quiet_ms`` of quiet, so a held vowel inside the first utterance never decides.
- For a machine it keeps listening until the beep ends (``GreetingEnd(kind="beep")``), or
  ``greeting_end_silence_ms`` of silence after the greeting, or ``max_greeting_ms``.
"""

from __future__ import annotations

from collections import deque
from operator import attrgetter, itemgetter

import numpy as np

from ringback.amd.beep import BeepTracker
from ringback.amd.events import AmdEvent, AnsweredBy, GreetingEnd, Verdict
from ringback.amd.features import FrameFeatures, fill_band_flatness, frame_features
from ringback.amd.params import FRAME_MS, FRAME_SAMPLES, AmdParams
from ringback.amd.voicing import periodicity

_FLOOR_BLOCK = 25  # frames per block of the minimum-statistics noise floor (0.5 s; 3 blocks kept)
_HZ_SLACK = 10.0  # frequency estimates at the band edges wobble by a few Hz
_SEARCH_MARGIN = 50.0  # look for the peak a little beyond the beep band
_MIN_PURITY = attrgetter("params.beep_min_purity")  # C-level getter: the bank reads it for every call
_FIRST = itemgetter(0)
TONE_MIN_PURITY2 = 0.93  # two strongest peaks holding this share of energy: a (dual) tone, not speech


def spectral_floor(p: AmdParams) -> float:
    """Below this level a frame can be neither a tone nor speech, so it needs no spectrum."""
    return min(p.beep_min_dbfs, p.vad_min_dbfs)


class FloorTracker:
    """Noise floor by minimum statistics: the quietest frame within the last 1-1.5 s (the minimum
    over the current block of _FLOOR_BLOCK frames and the two before it)."""

    __slots__ = ("_blk_min", "_prev0", "_prev1", "_blk_n", "_started")

    def __init__(self) -> None:
        self._blk_min = 0.0
        self._prev0 = 0.0  # minima of the two blocks before the current one, older first
        self._prev1 = 0.0
        self._blk_n = 0
        self._started = False

    def step(self, level: float) -> float:
        """Feed one frame's level; returns the floor including it."""
        # Runs for every call on every tick: plain comparisons instead of min() (which returns the
        # same value, the first of equal ones) save its call overhead.
        if self._blk_n == 0:
            if not self._started:
                self._prev0 = self._prev1 = level
                self._started = True
            blk_min = self._blk_min = level
        else:
            blk_min = self._blk_min
            if level < blk_min:
                blk_min = self._blk_min = level
        self._blk_n += 1
        floor = blk_min
        if self._prev0 < floor:
            floor = self._prev0
        if self._prev1 < floor:
            floor = self._prev1
        if self._blk_n == _FLOOR_BLOCK:
            self._prev0, self._prev1 = self._prev1, blk_min
            self._blk_n = 0
        return floor


class SyllableCounter:
    """Counts syllable nuclei: peaks of the (2-frame smoothed) level inside speech that stand out
    by ``dip_db`` from the dips on both sides (hysteresis, online). Counting syllables instead of
    voiced milliseconds measures how much was *said*, whatever the speaking rate: a slow
    "Good morning, Acme Dental, this is Sam speaking." is as many syllables as a fast one."""

    __slots__ = ("_dip", "_margin", "_prev", "_rising", "_max", "_min", "count")

    def __init__(self, dip_db: float, floor_margin_db: float = 0.0) -> None:
        self._dip = dip_db
        self._margin = floor_margin_db
        self._prev = -200.0
        self._rising = True
        self._max = -200.0
        self._min = 200.0
        self.count = 0

    def step(self, level: float, speech: bool, floor: float = -200.0) -> None:
        """``floor``: the noise floor of ``level``; anything under floor + margin counts as that
        (noise fluctuating under speech must not make peaks and dips)."""
        clamp = floor + self._margin
        if clamp > level:  # max(level, clamp) without the call (max keeps the first of equal ones)
            level = clamp
        sm = 0.5 * (level + self._prev)
        self._prev = level
        if not speech:
            # A pause ends any syllable: the next one needs its own rise.
            self._rising, self._max = True, -200.0
        elif self._rising:
            if sm > self._max:
                self._max = sm
            elif sm < self._max - self._dip:
                self.count += 1
                self._rising, self._min = False, sm
        elif sm < self._min:
            self._min = sm
        elif sm > self._min + self._dip:
            self._rising, self._max = True, sm


class Detector:
    """One call's detector. Times in events are seconds since answer (frame count x 20 ms)."""

    def __init__(self, params: AmdParams | None = None) -> None:
        p = params or AmdParams()
        self.params = p
        self._prev = np.zeros((1, FRAME_SAMPLES), dtype=np.int16)
        self._beep = BeepTracker(p)
        self._events: deque[AmdEvent] = deque()
        self.t_ms = 0  # start of the next frame
        # noise floor of the speech band (all sound and speech decisions are made in that band)
        self._band_floor = FloorTracker()
        # speech state
        self._raw_run = 0  # consecutive raw speech frames
        self._voice_end_ms = -(1 << 30)  # end of the last frame that passed _is_voice
        self._gap = 0  # consecutive non-speech frames while in speech
        self._in_speech = False
        self.voiced_ms = 0
        self.first_speech_ms = -1
        self._utt_start_ms = -1
        self.last_speech_end_ms = -1
        self.words = 0
        self.utterances = 0
        self.sentence_pauses = 0  # pauses between sentences inside the first utterance
        self._dual_run = 0  # consecutive frames that look like a dual tone
        self._prev_band = 0.0  # speech band level of the previous frame
        self._syl = SyllableCounter(p.syllable_dip_db, p.syllable_floor_margin_db)
        self._loud_run = 0
        self._sound_end_ms = -(1 << 30)  # end of the last non-tone sound (two loud frames or more)
        self._silence_key: tuple[int, int, int] | None = None  # cache of _human_silence_needed
        self._silence_needed = 0.0
        self.segments: list[list[int]] = []  # [start_ms, end_ms] of each speech run (end -1 while open)
        # results
        self.verdict: Verdict | None = None
        self.greeting_end: GreetingEnd | None = None
        self.beep_end_s: float | None = None
        self.done = False

    # --- public API ---------------------------------------------------------------------------

    def feed(self, frame: np.ndarray) -> AmdEvent | None:
        """Analyse the next 20 ms (int16, 160 samples). Returns a new event, if any."""
        p = self.params
        cur = np.asarray(frame, dtype=np.int16).reshape(1, FRAME_SAMPLES)
        prev = self._prev
        f = frame_features(
            prev, cur, p.beep_min_hz - _SEARCH_MARGIN, p.beep_max_hz + _SEARCH_MARGIN,
            spectral_floor(p), p.beep_min_purity, lazy_band_flatness=True,
        )
        self._prev = cur
        if not self.done:
            level, band = float(f.level_db[0]), float(f.band_db[0])
            floor = self._band_floor.step(band)
            if self._needs_band_flatness(level, band, floor):
                fill_band_flatness(f, np.zeros(1, dtype=np.intp))
            bf = float(f.band_flatness[0])
            voicing = float(periodicity(prev, cur)[0]) if self._needs_voicing(level, band, floor, bf) else 0.0
            self._step(level, float(f.peak_hz[0]), float(f.purity[0]), float(f.purity2[0]),
                       float(f.flatness[0]), band, bf, floor, voicing)
        return self.next_event()

    def next_event(self) -> AmdEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def answered_by(self) -> AnsweredBy:
        """The verdict so far; undecided is ``unknown`` (which the engine treats as a person)."""
        return self.verdict.answered_by if self.verdict else "unknown"

    def finish(self) -> Verdict:
        """The stream ended (or the caller gives up): settle the verdict now."""
        if self.verdict is None:
            self._decide("unknown", "ended")
        self.done = True
        assert self.verdict is not None
        return self.verdict

    # --- per-frame state machine (also driven by DetectorBank) ---------------------------------

    def step(self, level: float, hz: float, purity: float, purity2: float, flat: float, band: float,
             band_flat: float, voicing: float = 1.0) -> None:
        """One frame's features (``voicing``: ``voicing.periodicity``, read only where
        ``_needs_voicing``; the default passes the voicing test)."""
        if self.done:
            return
        self._step(level, hz, purity, purity2, flat, band, band_flat, self._band_floor.step(band), voicing)

    def _needs_band_flatness(self, level: float, band: float, band_floor: float) -> bool:
        """Whether ``_is_voice`` may look at this frame's band flatness (given the floor including it):
        only a frame loud enough whose band is neither clearly above its floor nor too close to it.
        Elsewhere the feature need not be computed (a large share of the spectral work)."""
        p = self.params
        snr = band - band_floor
        return level >= p.vad_min_dbfs and p.vad_voiced_snr_db <= snr < p.vad_snr_db

    def _needs_voicing(self, level: float, band: float, band_floor: float, band_flat: float) -> bool:
        """Whether ``_step`` may read this frame's periodicity: only a frame that passes the voice
        test (tones aside) and makes a run of them long enough to start speech. Speech under way,
        quiet, and a run's first frames need none: it is measured at onsets, a few frames each."""
        p = self.params
        if p.vad_min_periodicity <= 0.0 or self._in_speech or level < p.vad_min_dbfs:
            return False
        run_ms = (self._raw_run + 1) * FRAME_MS
        # (this frame ends at t_ms + 20 with the run one frame longer: the same start as _step sees)
        if run_ms < p.min_speech_run_ms or run_ms >= p.vad_unvoiced_run_ms or self._close_to_speech(self.t_ms):
            return False
        return self._is_voice(level, band, band_flat, band_floor)

    def _close_to_speech(self, now: int) -> bool:
        """The run of speech-like frames that ends at ``now`` starts within vad_voicing_gap_ms of
        the last speech: the next word, which needs no voicing test (breathy voices)."""
        last = self.last_speech_end_ms
        return last >= 0 and now - self._raw_run * FRAME_MS - last < self.params.vad_voicing_gap_ms

    def _step(self, level: float, hz: float, purity: float, purity2: float, flat: float, band: float,
              band_flat: float, band_floor: float, voicing: float) -> None:
        """``step`` once the noise floor has taken this frame (``band_floor``)."""
        p = self.params
        t = self.t_ms
        self.t_ms = t + FRAME_MS
        now = self.t_ms

        is_tone = (
            level >= p.beep_min_dbfs
            and purity >= p.beep_min_purity
            and flat >= p.beep_min_flatness
            and p.beep_min_hz - _HZ_SLACK <= hz <= p.beep_max_hz + _HZ_SLACK
        )
        bt = self._beep
        if is_tone or bt._run_start >= 0:
            bt.step(t, is_tone, hz, self._sound_end_ms, level)
        else:
            # No tone run open and no tone frame: step() would only note where sound ended
            # (tone_active is already False). Skipping the call matters: this runs per call per tick.
            bt._speech_end = self._sound_end_ms
        # Dual tones (ringback, busy) are excluded once they last dual_tone_min_ms at a steady level:
        # a vowel whose energy sits in two harmonics can look like one, but its level moves.
        if purity2 >= TONE_MIN_PURITY2:
            # A dual tone holds its level; a high voice's vowel (two strong harmonics) does not.
            step_db = band - self._prev_band
            steady = -p.dual_tone_max_step_db <= step_db <= p.dual_tone_max_step_db
            self._dual_run = self._dual_run + 1 if steady else 1
        else:
            self._dual_run = 0
        self._prev_band = band
        tonal = bt.tone_active or self._dual_run * FRAME_MS >= p.dual_tone_min_ms
        # Loud sound, judged in the speech band like speech, so rumble swelling under a beep does
        # not count as sound around it.
        loud = level >= p.vad_min_dbfs and band >= band_floor + p.vad_snr_db
        # _is_voice, inlined (it runs for every call on every tick).
        snr = band - band_floor
        raw = not tonal and level >= p.vad_min_dbfs and (
            snr >= p.vad_snr_db or (snr >= p.vad_voiced_snr_db and band_flat <= p.vad_voiced_max_flatness))
        if raw:
            self._voice_end_ms = now
        elif (self._in_speech and not tonal and now - self._voice_end_ms <= p.vad_hold_ms
              and level >= p.vad_min_dbfs and snr >= p.vad_hold_snr_db):
            # Speech fading into noise (a word's tail, a soft syllable) goes on at a lower SNR than
            # it takes to start: in noise the onset test would cut every word short and make
            # pauses look longer than they are. Bounded in time, so noise alone cannot hold it.
            raw = True
        # Sound that is not a tone, whatever the speech classifier makes of it (a held vowel can
        # pass for a dual tone): a beep must stand apart from it. Two frames, because a beep's
        # own ragged first frame is loud and not yet known to be a tone.
        self._loud_run = self._loud_run + 1 if (loud and not bt.tone_active) else 0
        if self._loud_run >= 2:
            self._sound_end_ms = now

        # Smoothed speech with onset run and hangover.
        if raw:
            self._raw_run += 1
            self._gap = 0
            # Noise bursts pass the energy test too: a run long enough starts speech only at a voiced
            # frame, or once it lasts longer than a burst (a voice whose pitch the test cannot follow).
            run_ms = self._raw_run * FRAME_MS
            if (not self._in_speech and run_ms >= p.min_speech_run_ms
                    and (voicing >= p.vad_min_periodicity or run_ms >= p.vad_unvoiced_run_ms
                         or self._close_to_speech(now))):
                self._in_speech = True
                start = now - self._raw_run * FRAME_MS
                self.segments.append([start, -1])
                if self.first_speech_ms < 0:
                    self.first_speech_ms = start
                pause = start - self.last_speech_end_ms if self.last_speech_end_ms >= 0 else -1
                period = self.syllable_period_ms()
                if pause < 0 or pause >= max(p.utterance_gap_ms, p.utterance_gap_periods * period):
                    self._utt_start_ms = start  # a long pause starts a new utterance
                    self.utterances += 1
                elif pause >= max(p.sentence_pause_ms, p.sentence_pause_periods * period) and self.utterances == 1:
                    self.sentence_pauses += 1
                if pause < 0 or pause >= max(p.word_gap_ms, p.word_gap_periods * period):
                    self.words += 1
                self.voiced_ms += self._raw_run * FRAME_MS
            elif self._in_speech:
                self.voiced_ms += FRAME_MS
        else:
            self._raw_run = 0
            if self._in_speech:
                self._gap += 1
                if self._gap * FRAME_MS >= p.speech_hangover_ms:
                    self._in_speech = False
                    self.last_speech_end_ms = now - self._gap * FRAME_MS
                    self.segments[-1][1] = self.last_speech_end_ms
        self._syl.step(band, self._in_speech, band_floor)
        # confirm() changes nothing and finds nothing without a candidate beep: skip the call.
        beep = bt.confirm(t, self._loud_run) if bt._cand_end >= 0 else None
        silence_ms = now - self.last_speech_end_ms if (not self._in_speech and self.last_speech_end_ms >= 0) else 0

        if self.verdict is None:
            if beep is not None:
                self._decide("machine", "beep")
            elif bt.sit:
                self._decide("machine", "sit")
            elif self.first_speech_ms < 0:
                if now >= p.initial_silence_ms:
                    self._decide("unknown", "initial-silence")
            elif self.voiced_ms >= p.machine_speech_ms:
                self._decide("machine", "long-speech")
            elif self._syl.count >= p.machine_syllables > 0:
                self._decide("machine", "syllables")
            elif self._in_speech and now - self._utt_start_ms >= p.machine_utterance_ms:
                self._decide("machine", "long-utterance")
            elif self.words > p.max_words:
                self._decide("machine", "max-words")
            elif self.sentence_pauses >= p.machine_sentences:
                self._decide("machine", "sentences")
            elif self.sentence_pauses > 0 and self._syl.count >= p.machine_sentence_syllables:
                self._decide("machine", "sentences-speech")
            elif silence_ms > 0 and not bt.busy and silence_ms >= self._human_silence_needed():
                self._decide("human", "short-greeting")
            elif now >= p.total_analysis_ms:
                # Still talking (or barely paused) after lots of speech: a machine. A long phrase
                # followed by a long wait is how people answer, so that stays undecided.
                talking = self._in_speech or silence_ms < max(
                    p.utterance_gap_ms, p.utterance_gap_periods * self.syllable_period_ms())
                if self.voiced_ms >= p.timeout_machine_speech_ms and talking:
                    self._decide("machine", "timeout-speech")
                else:
                    self._decide("unknown", "timeout")
            if self.verdict is None or self.verdict.answered_by != "machine":
                if self.verdict is not None:
                    self.done = True
                return
        # A machine: wait for the beep or the end of its greeting.
        if beep is not None:
            self.beep_end_s = beep[0] / 1000.0
            self._end_greeting("beep", beep[0])
        elif silence_ms >= p.greeting_end_silence_ms and not bt.busy:
            self._end_greeting("silence", self.last_speech_end_ms)
        elif now >= p.max_greeting_ms:
            self._end_greeting("timeout", now)

    # --- helpers ----------------------------------------------------------------------------------

    def _is_voice(self, level: float, band: float, band_flat: float, band_floor: float) -> bool:
        """Speech, frame by frame: loud enough overall, and the speech band clearly above its own
        noise floor, or less clearly but voiced (harmonics that no steady noise has).
        ``_step`` has this test inlined (it runs for every call on every tick): change both together."""
        p = self.params
        if level < p.vad_min_dbfs:
            return False
        snr = band - band_floor
        return snr >= p.vad_snr_db or (snr >= p.vad_voiced_snr_db and band_flat <= p.vad_voiced_max_flatness)

    def syllable_period_ms(self) -> float:
        """This speaker's pace: voiced ms per syllable so far, shrunk towards the prior while few
        syllables are heard (one "Hello?" is too little to trust on its own)."""
        p = self.params
        w = p.rate_prior_syllables
        n = self._syl.count + w
        t = (self.voiced_ms + w * p.rate_prior_period_ms) / n if n > 0 else float(p.rate_prior_period_ms)
        return min(max(t, p.rate_min_period_ms), p.rate_max_period_ms)

    def _human_silence_needed(self) -> float:
        # The more they said, the longer the silence must be (machines pause between sentences),
        # and all of it in this speaker's syllable periods: a slow reader's sentence pause is
        # longer in ms than a fast person's wait, but not in periods.
        # It depends only on these counts, which stay put while the silence lasts (the frames that
        # ask, every one of a person's wait): reuse the last answer until they change.
        key = (self._syl.count, self.sentence_pauses, self.voiced_ms)
        if key == self._silence_key:
            return self._silence_needed
        self._silence_key = key
        self._silence_needed = need = self._human_silence_needed_now()
        return need

    def _human_silence_needed_now(self) -> float:
        p = self.params
        n = self._syl.count
        if n >= p.human_max_syllables:
            return float(1 << 30)
        t = self.syllable_period_ms()
        if self.sentence_pauses > 0 or n >= p.human_mid_syllables:
            return max(p.human_long_silence_ms, p.human_long_silence_periods * t)
        if n < p.human_short_syllables:
            return max(p.human_silence_ms, p.human_silence_periods * t)
        return max(p.human_mid_silence_ms, p.human_mid_silence_periods * t)

    def _decide(self, who: AnsweredBy, cause: str) -> None:
        self.verdict = Verdict(answered_by=who, decided_at=self.t_ms / 1000.0, cause=cause)
        self._events.append(self.verdict)

    def _end_greeting(self, kind: str, at_ms: int) -> None:
        self.greeting_end = GreetingEnd(kind=kind, at=at_ms / 1000.0, decided_at=self.t_ms / 1000.0)  # type: ignore[arg-type]
        self._events.append(self.greeting_end)
        self.done = True


class DetectorBank:
    """Many calls' detectors fed together: one numpy pass for the features of all of them.

    ``feed(detectors, frames)``: ``frames`` is (N, 160) int16 (row i for ``detectors[i]``); returns
    the new events as (index, event) pairs. All detectors must share beep_min_hz/beep_max_hz,
    beep_min_dbfs and vad_min_dbfs (the band searched and the level below which no FFT is done).
    The costlier features are measured only where some rule can read them: the tone's frequency and
    envelope where the purity test can pass, the speech band's flatness where the voice decision is
    left open by the band's level over its floor (the features of a frame no rule reads are left
    at their "no spectrum" values). A detector fed by a bank is fed only by that bank from then
    on (its previous frame may be taken from the bank's last batch instead of the detector).
    """

    def __init__(self) -> None:
        # The last batch and its detectors: when the same calls come next tick (the usual case),
        # their previous frames are that batch, with no gathering of 100 one-row arrays.
        self._last_dets: list[Detector] = []
        self._last_frames: np.ndarray | None = None

    def feed(self, detectors: list[Detector], frames: np.ndarray) -> list[tuple[int, AmdEvent]]:
        if not detectors:
            return []
        frames = np.asarray(frames, dtype=np.int16).reshape(len(detectors), FRAME_SAMPLES)
        # (list == compares identity first; Detector has no __eq__, so equal means the same calls)
        if self._last_frames is not None and detectors == self._last_dets:
            prev = self._last_frames
        else:
            prev = np.concatenate([d._prev for d in detectors], axis=0)
        self._last_dets, self._last_frames = list(detectors), frames
        p0 = detectors[0].params
        # Peak frequency and envelope test only where the purity test can pass (the loosest of the calls).
        min_purity = min(map(_MIN_PURITY, detectors))
        f: FrameFeatures = frame_features(
            prev, frames, p0.beep_min_hz - _SEARCH_MARGIN, p0.beep_max_hz + _SEARCH_MARGIN, spectral_floor(p0),
            min_purity, lazy_band_flatness=True,
        )
        levels, bands = f.level_db.tolist(), f.band_db.tolist()
        cols = zip(levels, f.peak_hz.tolist(), f.purity.tolist(), f.purity2.tolist(), f.flatness.tolist(), bands,
                   strict=True)
        out: list[tuple[int, AmdEvent]] = []
        # One pass: each call's noise floor, which tells whether the band flatness or the voicing
        # can matter, then its rules at once. The few calls that need either wait until it is
        # measured for all of them in one numpy pass; every other call's flatness is the lazy 1.0
        # and its voicing 0.0, which no rule reads.
        need: list[int] = []
        need_floors: list[float] = []
        need_flat: list[int] = []
        maybe_voice: list[tuple[int, float]] = []  # (call, its band floor)
        # (iterating the (N, 1, 160) view hands out each call's row without Python-level slicing)
        for i, (det, (lv, hz, pu, pu2, fl, bd), row) in enumerate(zip(detectors, cols, frames[:, None, :], strict=True)):
            det._prev = row
            if det.done:
                continue
            bfl = det._band_floor.step(bd)
            # _needs_band_flatness and (the level part of) _needs_voicing, inlined: this loop runs
            # for every call on every tick.
            q = det.params
            if lv >= q.vad_min_dbfs and bd - bfl >= q.vad_voiced_snr_db:
                flat = bd - bfl < q.vad_snr_db
                voice = (q.vad_min_periodicity > 0.0 and not det._in_speech
                         and (det._raw_run + 1) * FRAME_MS >= q.min_speech_run_ms)
                if flat or voice:
                    need.append(i)
                    need_floors.append(bfl)
                    if flat:
                        need_flat.append(i)
                    if voice:
                        maybe_voice.append((i, bfl))
                    continue
            det._step(lv, hz, pu, pu2, fl, bd, 1.0, bfl, 0.0)
            while det._events:
                out.append((i, det._events.popleft()))
        if need:
            if need_flat:
                fill_band_flatness(f, np.array(need_flat, dtype=np.intp))
            band_flat = f.band_flatness
            voicing = [0.0] * len(detectors)
            if maybe_voice:
                # Now that the flatness is known: only frames that pass the voice test need it.
                rows = [i for i, bfl in maybe_voice
                        if detectors[i]._needs_voicing(levels[i], bands[i], bfl, float(band_flat[i]))]
                if rows:
                    idx = np.array(rows, dtype=np.intp)
                    for i, v in zip(rows, periodicity(prev[idx], frames[idx]).tolist(), strict=True):
                        voicing[i] = v
            peak_hz, purity, purity2, flatness = f.peak_hz, f.purity, f.purity2, f.flatness
            for i, bfl in zip(need, need_floors, strict=True):
                det = detectors[i]
                det._step(levels[i], float(peak_hz[i]), float(purity[i]), float(purity2[i]), float(flatness[i]),
                          bands[i], float(band_flat[i]), bfl, voicing[i])
                while det._events:
                    out.append((i, det._events.popleft()))
            out.sort(key=_FIRST)  # events in call order, as before (stable: each call's stay in order)
        return out
