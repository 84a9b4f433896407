"""Beep tracker: turns per-frame tone measurements into accepted beeps (sans-IO, one per call).

A beep is one stable spectral peak in [beep_min_hz, beep_max_hz], lasting beep_min_ms..beep_max_ms,
outside the fax bands, not followed at once by a tone of another frequency (SIT sequences) nor by
speech. Dual tones, DTMF and most speech never get here: they fail the purity/flatness tests frame
by frame. What does get here from speech is a held vowel whose harmonic looks pure for a few
frames; it glides, so a tone must also hold its frequency from frame to frame (beep_max_step_hz),
and a tone that starts right where speech stops must be longer and followed by quiet. A weak
beep's peak wobbles in noise: once a tone has held beep_min_ms, one frame that jumps past
beep_max_step_hz but stays near the tone's mean is a dropout, and the tone's ragged tail (the
next frame, its peak smeared a few Hz) never counts as a new tone of a sequence. A beep also
holds its level (``beep_steady_db``): a knock's or a clink's partial rings at one frequency too,
but dies away.

Two calls per frame, in this order: ``step`` (tone runs) then ``confirm`` (with the frame's raw
speech flag, which the detector can only compute once it knows whether a tone is sounding).
"""

from __future__ import annotations

from ringback.amd.params import FRAME_MS, AmdParams


class BeepTracker:
    __slots__ = (
        "_p",
        "_run_start",
        "_run_end",
        "_run_sum",
        "_run_n",
        "_run_last_hz",
        "_run_seq",
        "_run_attached",
        "_run_levels",
        "_dropouts",
        "_cand_end",
        "_cand_hz",
        "_confirm_at",
        "_max_dropouts",
        "_speech_end",
        "_seq_hz",
        "_seq_n",
        "_seq_end",
        "tone_active",
        "sit",
    )

    def __init__(self, params: AmdParams) -> None:
        self._p = params
        self._run_start = -1  # ms; -1 = no tone run open
        self._run_end = 0
        self._run_sum = 0.0
        self._run_n = 0
        self._run_last_hz = 0.0
        self._run_seq = False
        self._run_attached = False
        self._run_levels: list[float] = []  # level (dBFS) of each frame the run took
        self._dropouts = 0
        self._cand_end = -1  # a finished tone waiting for confirmation
        self._cand_hz = 0.0
        self._confirm_at = 0
        self._max_dropouts = params.beep_max_dropout_ms // FRAME_MS
        self._speech_end = -(1 << 30)  # end (ms) of the last non-tone sound
        # back-to-back tones of different frequencies (SIT)
        self._seq_hz = 0.0
        self._seq_n = 0
        self._seq_end = -(1 << 30)
        # A tone is sounding: at least two frames holding one frequency. One pure-looking frame is
        # not enough, or voiced speech would be taken out of the speech classifier's hands.
        self.tone_active = False
        self.sit = False  # a special-information-tone sequence was heard

    def step(self, t_ms: int, is_tone: bool, hz: float, sound_end_ms: int, level: float = 0.0) -> None:
        """Feed the frame that starts at ``t_ms``: extend, close or open a tone run.

        ``sound_end_ms``: where the last sound that is not a tone (speech, noise bursts) ended;
        ``level``: the frame's level (dBFS).
        """
        p = self._p
        self._speech_end = sound_end_ms
        if self._run_start >= 0:
            mean = self._run_sum / self._run_n
            if is_tone and abs(hz - mean) <= p.beep_freq_tol_hz and abs(hz - self._run_last_hz) <= p.beep_max_step_hz:
                self._run_end = t_ms + FRAME_MS
                self._run_sum += hz
                self._run_n += 1
                self._run_last_hz = hz
                self._run_levels.append(level)
                self._dropouts = 0
                is_tone = False  # consumed
            elif self._dropouts < self._max_dropouts and (
                not is_tone
                # A tone that has held for beep_min_ms may jump past beep_max_step_hz for a frame
                # when noise pulls its interpolated peak, but around its mean (within two steps): a
                # dropout, not an end. A glide (a siren, a vowel) moves away from the mean instead.
                or (abs(hz - mean) <= 2.0 * p.beep_max_step_hz and self._run_n * FRAME_MS >= p.beep_min_ms)
            ):
                self._dropouts += 1
                is_tone = False
            else:
                same = is_tone and abs(hz - mean) <= p.beep_freq_tol_hz
                self._close_run(changed=is_tone and not same)
                if same:
                    # The tone's own ragged tail (still in the 40 ms window, its peak smeared by a
                    # few Hz), not a new tone: it must not start a run that cancels this one as
                    # the first of a sequence.
                    is_tone = False
        if is_tone:
            seq = self._cand_end >= 0 or (0 <= t_ms - self._run_end <= p.beep_confirm_ms and self._run_n > 1)
            if self._cand_end >= 0:
                # Another tone right after one: a sequence such as SIT, not a beep.
                self._cand_end = -1
            self._run_start = t_ms
            self._run_end = t_ms + FRAME_MS
            self._run_sum = hz
            self._run_n = 1
            self._run_last_hz = hz
            self._run_seq = seq
            self._run_attached = t_ms - self._speech_end < p.beep_min_gap_ms
            self._run_levels = [level]
            self._dropouts = 0
        self.tone_active = self._run_start >= 0 and self._run_n >= 2

    @property
    def busy(self) -> bool:
        """A tone is sounding or a finished one awaits confirmation: no verdict from silence now."""
        return self.tone_active or self._cand_end >= 0

    def confirm(self, t_ms: int, sound_run: int) -> tuple[int, float] | None:
        """After ``step`` for the same frame, with the number of loud non-tone frames in a row up
        to and including it. Returns (beep end ms, frequency) once confirmed."""
        if sound_run >= 2 and self._cand_end >= 0:
            # Sound right after the tone: it was a held vowel (or the tone was inside speech).
            # One loud frame is not enough: a beep's own ragged last frame can look like that.
            self._cand_end = -1
        if self._cand_end >= 0 and t_ms + FRAME_MS >= self._confirm_at:
            found = (self._cand_end, self._cand_hz)
            self._cand_end = -1
            return found
        return None

    def _close_run(self, changed: bool) -> None:
        p = self._p
        dur = self._run_end - self._run_start
        hz = self._run_sum / self._run_n
        # Only whole tonal frames are counted: the tone's partial first/last frames add up to 40 ms.
        long_enough = p.beep_min_ms <= dur + FRAME_MS and self._run_n >= 2
        if long_enough:
            self._note_sequence(hz)
        ok = (
            long_enough
            and dur <= p.beep_max_ms
            and not self._run_seq
            and not changed
            and abs(hz - p.fax_cng_hz) > p.reject_band_hz
            and abs(hz - p.fax_ced_hz) > p.reject_band_hz
            and (not self._run_attached or dur + FRAME_MS >= p.beep_attached_min_ms)
            and self._steady()
        )
        if ok:
            self._cand_end = self._run_end
            self._cand_hz = hz
            quiet = p.beep_attached_quiet_ms if self._run_attached else p.beep_confirm_ms
            self._confirm_at = self._run_end + quiet
        self._run_start = -1  # _run_n stays: step() asks whether a real tone just ended
        self._dropouts = 0

    def _steady(self) -> bool:
        """The tone held its level: enough of its frames (beep_min_ms less the partial edge frame)
        within beep_steady_db of its loudest. A ringing knock loses that much in a frame or two."""
        p = self._p
        levels = self._run_levels
        top = max(levels) - p.beep_steady_db
        return sum(lv >= top for lv in levels) * FRAME_MS >= p.beep_min_ms - FRAME_MS

    def _note_sequence(self, hz: float) -> None:
        # SIT: three tones of different frequencies, each 274-380 ms, back to back.
        p = self._p
        if self._run_start - self._seq_end <= p.beep_confirm_ms and abs(hz - self._seq_hz) > p.beep_freq_tol_hz:
            self._seq_n += 1
        else:
            self._seq_n = 1
        self._seq_hz = hz
        self._seq_end = self._run_end
        if p.sit_min_tones > 0 and self._seq_n >= p.sit_min_tones:
            self.sit = True
