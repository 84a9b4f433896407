"""Beep tracker: turns per-frame tone measurements into accepted beeps (sans-IO, one per call).

A beep is one stable spectral peak in [beep_min_hz, beep_max_hz], lasting beep_min_ms..beep_max_ms,
outside the fax bands, and not followed at once by a tone of another frequency (SIT sequences).
Dual tones, DTMF and speech never get here: they fail the purity/flatness tests frame by frame.
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
        "_run_seq",
        "_dropouts",
        "_cand_end",
        "_cand_hz",
        "_confirm_at",
        "_max_dropouts",
        "tone_active",
    )

    def __init__(self, params: AmdParams) -> None:
        self._p = params
        self._run_start = -1  # ms; -1 = no tone run open
        self._run_end = 0
        self._run_sum = 0.0
        self._run_n = 0
        self._run_seq = False
        self._dropouts = 0
        self._cand_end = -1  # a finished tone waiting for confirmation
        self._cand_hz = 0.0
        self._confirm_at = 0
        self._max_dropouts = params.beep_max_dropout_ms // FRAME_MS
        self.tone_active = False  # a tone is sounding (the speech classifier ignores it)

    def step(self, t_ms: int, is_tone: bool, hz: float) -> tuple[int, float] | None:
        """Feed the frame that starts at ``t_ms``. Returns (beep end ms, frequency) once confirmed."""
        p = self._p
        if self._run_start >= 0:
            mean = self._run_sum / self._run_n
            if is_tone and abs(hz - mean) <= p.beep_freq_tol_hz:
                self._run_end = t_ms + FRAME_MS
                self._run_sum += hz
                self._run_n += 1
                self._dropouts = 0
                is_tone = False  # consumed
            elif not is_tone and self._dropouts < self._max_dropouts:
                self._dropouts += 1
            else:
                self._close_run(changed=is_tone)
        if is_tone:
            seq = self._cand_end >= 0 or (0 <= t_ms - self._run_end <= p.beep_confirm_ms and self._run_n > 0)
            if self._cand_end >= 0:
                # Another tone right after one: a sequence such as SIT, not a beep.
                self._cand_end = -1
            self._run_start = t_ms
            self._run_end = t_ms + FRAME_MS
            self._run_sum = hz
            self._run_n = 1
            self._run_seq = seq
            self._dropouts = 0
        self.tone_active = self._run_start >= 0
        if self._cand_end >= 0 and t_ms + FRAME_MS >= self._confirm_at:
            found = (self._cand_end, self._cand_hz)
            self._cand_end = -1
            return found
        return None

    def _close_run(self, changed: bool) -> None:
        p = self._p
        dur = self._run_end - self._run_start
        hz = self._run_sum / self._run_n
        ok = (
            # Only whole tonal frames are counted: the tone's partial first/last frames add up to 40 ms.
            p.beep_min_ms <= dur + FRAME_MS
            and dur <= p.beep_max_ms
            and not self._run_seq
            and not changed
            and abs(hz - p.fax_cng_hz) > p.reject_band_hz
            and abs(hz - p.fax_ced_hz) > p.reject_band_hz
        )
        if ok:
            self._cand_end = self._run_end
            self._cand_hz = hz
            self._confirm_at = self._run_end + p.beep_confirm_ms
        self._run_start = -1
        self._dropouts = 0
