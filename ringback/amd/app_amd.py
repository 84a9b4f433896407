"""A faithful re-implementation of Asterisk's app_amd (apps/app_amd.c), default parameters.

It exists as the baseline the benchmark compares the production detector with. Rules, in the
order app_amd applies them to each voice frame (telephony-anchors.md section 4.1):

- The frame is silent if its mean absolute sample value is below ``silence_threshold``
  (``ast_dsp_silence``); the DSP reports the run of consecutive silence including this frame.
- Silent frame: ``silenceDuration`` = that run. If it is >= ``between_words_silence`` the state
  becomes IN_SILENCE and the consecutive voice run is reset. Then, while still in the initial
  silence, a run >= ``initial_silence`` -> MACHINE (INITIALSILENCE); once in the greeting, a run
  >= ``after_greeting_silence`` -> HUMAN.
- Voice frame: consecutive and total voice grow by the frame length. Consecutive voice >=
  ``minimum_word_length`` coming from IN_SILENCE counts a word (state IN_WORD). Then, in order:
  consecutive voice >= ``maximum_word_length`` -> MACHINE (MAXWORDLENGTH); words >
  ``maximum_number_of_words`` -> MACHINE (MAXWORDS); in the greeting and total voice >=
  ``greeting`` -> MACHINE (LONGGREETING). Total voice >= minimum_word_length resets the silence
  duration; consecutive voice >= minimum_word_length starts the greeting (leaves initial silence).
- Before all of that, every frame adds to the total time; total >= ``total_analysis_time`` ->
  NOTSURE (TOOLONG).

Note the initial state is IN_WORD (as in app_amd), so the first word is only counted after a
silence of ``between_words_silence``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

AmdStatus = Literal["MACHINE", "HUMAN", "NOTSURE"]


@dataclass(frozen=True, slots=True)
class AppAmdParams:
    """app_amd's arguments, in AMD() order, with amd.conf.sample's defaults (ms unless noted)."""

    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    minimum_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 2
    silence_threshold: int = 256  # mean |sample| on the 0..32767 scale
    maximum_word_length: int = 5000


@dataclass(frozen=True, slots=True)
class AppAmdResult:
    status: AmdStatus
    cause: str
    decided_at: float  # seconds of audio analysed

    @property
    def answered_by(self) -> Literal["human", "machine", "unknown"]:
        return {"MACHINE": "machine", "HUMAN": "human", "NOTSURE": "unknown"}[self.status]  # type: ignore[return-value]


_IN_WORD = 0
_IN_SILENCE = 1


class AppAmd:
    """Sans-IO app_amd: ``feed(frame)`` per voice frame until it returns a result."""

    def __init__(self, params: AppAmdParams | None = None, sample_rate: int = 8000) -> None:
        self.p = params or AppAmdParams()
        self._samples_per_ms = sample_rate // 1000
        self.result: AppAmdResult | None = None
        self.total_time = 0
        self.dsp_silence = 0  # ast_dsp's totalsilence
        self.silence_duration = 0
        self.consecutive_voice = 0
        self.voice_duration = 0
        self.words = 0
        self.state = _IN_WORD
        self.in_initial_silence = True
        self.in_greeting = False

    def feed(self, frame: np.ndarray) -> AppAmdResult | None:
        if self.result is not None:
            return self.result
        p = self.p
        x = np.asarray(frame, dtype=np.int16)
        framelength = x.size // self._samples_per_ms
        self.total_time += framelength
        if self.total_time >= p.total_analysis_time:
            return self._done("NOTSURE", f"TOOLONG-{self.total_time}")

        # ast_dsp_silence: mean absolute value against the threshold (integer division as in C).
        accum = int(np.abs(x.astype(np.int32)).sum()) // max(1, x.size)
        if accum < p.silence_threshold:
            self.dsp_silence += framelength
        else:
            self.dsp_silence = 0

        if self.dsp_silence > 0:
            self.silence_duration = self.dsp_silence
            if self.silence_duration >= p.between_words_silence:
                self.state = _IN_SILENCE
                self.consecutive_voice = 0
            if self.in_initial_silence and self.silence_duration >= p.initial_silence:
                return self._done("MACHINE", f"INITIALSILENCE-{self.silence_duration}-{p.initial_silence}")
            if self.silence_duration >= p.after_greeting_silence and self.in_greeting:
                return self._done("HUMAN", f"HUMAN-{self.silence_duration}-{p.after_greeting_silence}")
        else:
            self.consecutive_voice += framelength
            self.voice_duration += framelength
            if self.consecutive_voice >= p.minimum_word_length and self.state == _IN_SILENCE:
                self.words += 1
                self.state = _IN_WORD
            if self.consecutive_voice >= p.maximum_word_length:
                return self._done("MACHINE", f"MAXWORDLENGTH-{self.consecutive_voice}")
            if self.words > p.maximum_number_of_words:
                return self._done("MACHINE", f"MAXWORDS-{self.words}-{p.maximum_number_of_words}")
            if self.in_greeting and self.voice_duration >= p.greeting:
                return self._done("MACHINE", f"LONGGREETING-{self.voice_duration}-{p.greeting}")
            if self.voice_duration >= p.minimum_word_length:
                self.silence_duration = 0
            if self.consecutive_voice >= p.minimum_word_length and not self.in_greeting:
                self.in_initial_silence = False
                self.in_greeting = True
        return None

    def _done(self, status: AmdStatus, cause: str) -> AppAmdResult:
        self.result = AppAmdResult(status=status, cause=cause, decided_at=self.total_time / 1000.0)
        return self.result


def run_app_amd(pcm: np.ndarray, params: AppAmdParams | None = None, frame_ms: int = 20) -> AppAmdResult:
    """Run app_amd over a whole 8 kHz clip; if it ends undecided, NOTSURE (as a hangup would)."""
    amd = AppAmd(params)
    n = 8 * frame_ms
    for i in range(pcm.size // n):
        res = amd.feed(pcm[i * n : (i + 1) * n])
        if res is not None:
            return res
    return AppAmdResult(status="NOTSURE", cause=f"ENDED-{amd.total_time}", decided_at=amd.total_time / 1000.0)
