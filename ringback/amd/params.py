"""Every threshold of the production detector, named and documented.

Plain ints/floats with snake_case names so that the server can expose each as ``--amd-<name>``
(dashes) and ``RINGBACK_AMD_<NAME>``. Times are milliseconds, levels dBFS (0 = full-scale sine
peak of int16), frequencies Hz.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

FRAME_MS = 20  # the shared media clock's tick: 160 samples at 8 kHz
SAMPLE_RATE = 8000
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000


def frames(pcm: np.ndarray) -> np.ndarray:
    """8 kHz audio as (n, FRAME_SAMPLES) whole frames (a view; a partial last frame is dropped)."""
    n = pcm.size // FRAME_SAMPLES
    return pcm[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)


@dataclass(frozen=True, slots=True)
class AmdParams:
    # --- voice activity (energy against an adaptive noise floor, tones excluded) ---
    vad_min_dbfs: float = -42.0
    """A frame quieter than this is never speech (about -39 dBm0 on G.711)."""
    vad_snr_db: float = 9.0
    """A frame must be this far above the tracked noise floor to count as speech. Measured in the
    300-3400 Hz speech band against that band's own floor, so rumble, hum and brown noise (mostly
    below 300 Hz) neither mask speech nor pass for it."""
    vad_voiced_snr_db: float = 5.0
    """A voiced frame (band flatness under vad_voiced_max_flatness) needs only this much over the
    speech band's floor: steady noise has no harmonics, so voicing is evidence on its own."""
    vad_voiced_max_flatness: float = 0.35
    """Local spectral flatness of the speech band below which a frame is voiced. Stationary noise
    of any colour scores ~0.56 (5th percentile ~0.5); voiced vowels' harmonics score under 0.2."""
    noise_floor_rise_db: float = 0.06
    """How fast (dB per frame) the noise floor may climb; it falls at once to a quieter frame."""
    min_speech_run_ms: int = 60
    """Voice must last this long before an utterance starts (clicks and pops do not)."""
    speech_hangover_ms: int = 120
    """Silence shorter than this inside speech is bridged (plosives, short gaps between syllables)."""
    vad_min_periodicity: float = 0.35
    """A run of speech-like frames becomes speech only at a voiced frame (but see
    vad_unvoiced_run_ms and vad_voicing_gap_ms): its periodicity (``voicing.periodicity``: the
    linear-prediction residual's normalised autocorrelation at a 50-400 Hz pitch lag) at least
    this. Vowels score about 0.45-1; noise, and bursts of it (static, rustling, typing, knocks and
    clinks, whose ringing partials the predictor takes out), about 0.1-0.35, so a noise burst is
    neither a word nor a syllable nor a sentence. 0 turns the test off."""
    vad_unvoiced_run_ms: int = 140
    """A run of speech-like frames this long is speech even with no voiced frame: creaky, breathy or
    very low voices (under 50 Hz) defeat the pitch test, and transient noise (knocks, clicks,
    crackles, clinks) is shorter."""
    vad_voicing_gap_ms: int = 260
    """A run that starts this soon after the last speech is the next word and needs no voicing
    (a breathy voice's words are weakly periodic): the test guards the pauses where noise bursts
    would read as new sentences or as an answer, i.e. from the shortest sentence pause on."""
    vad_hold_snr_db: float = 4.0
    """Once speech has started, a frame this far above the speech band's floor continues it (a
    lower bar than vad_snr_db for starting): word tails and soft syllables in noise stay speech,
    so pauses are not read longer, nor the speaker's voiced time shorter, than they are."""
    vad_hold_ms: int = 200
    """How long after the last frame that passed the full voice test vad_hold_snr_db may continue
    speech: a bound on what fluctuating noise alone can hold."""
    dual_tone_min_ms: int = 40
    """Frames whose two strongest peaks hold nearly all the energy (ringback, busy, DTMF) are a dual
    tone, not speech, once they last this long at a steady level (dual_tone_max_step_db)."""
    dual_tone_max_step_db: float = 3.0
    """How far the speech band's level may move from one frame to the next within a dual tone. A
    tone holds its level; a high voice's vowel, whose energy also sits in two strong harmonics
    (f0 over ~250 Hz), moves by more, so it stays speech."""

    # --- speech pattern: people say something short and wait; machines talk on ---
    # Every pause rule is relative to the speaker's own pace, the syllable period T: voiced
    # milliseconds per syllable nucleus so far (SyllableCounter), shrunk towards rate_prior_period_ms
    # while few syllables are heard. A slow speaker's commas are as long as a fast one's sentence
    # pauses in milliseconds, but not in syllable periods; and how much was said is counted in
    # syllables, not milliseconds. Each relative threshold has a floor in milliseconds (the *_ms
    # field) for very fast or barely measured speech.
    # The first utterance is speech whose inner pauses are all shorter than the utterance gap.
    # Recorded greetings are read sentences: they pause between sentences, where people answering
    # say one phrase with at most comma-length pauses, then wait.
    rate_prior_period_ms: int = 180
    """The syllable period assumed before any syllable is heard (about 170 wpm)."""
    rate_prior_syllables: float = 2.0
    """Weight of that prior, in syllables: T = (voiced_ms + w * prior) / (syllables + w)."""
    rate_min_period_ms: int = 90
    """T is clamped to at least this (one syllable per ~2 frames would be a counting error)."""
    rate_max_period_ms: int = 450
    """T is clamped to at most this (a held vowel or unsegmented noise)."""
    initial_silence_ms: int = 5000
    """No speech at all for this long -> unknown (undecided counts as a person)."""
    human_silence_ms: int = 300
    """Floor of the silence that proves a person after a short first utterance (fewer than
    human_short_syllables, no sentence pause): "Hello?" and a wait."""
    human_silence_periods: float = 3.6
    """That silence in syllable periods (the larger of the two applies)."""
    human_short_syllables: int = 2
    """Syllables below which human_silence_* applies ("Hello?", "Yeah, hello?")."""
    human_mid_silence_ms: int = 500
    """Floor of the silence that proves a person after fewer than human_mid_syllables ("Hi, this is Dana")."""
    human_mid_silence_periods: float = 3.0
    """That silence in syllable periods."""
    human_mid_syllables: int = 8
    """Syllables below which human_mid_silence_* applies."""
    human_long_silence_ms: int = 1300
    """Floor of the silence that proves a person after longer speech, or after any sentence pause (a
    business greeting). Greetings pause under 0.7 s between sentences, and a beep comes at most
    ~1.2 s after the greeting: waiting this long lets a late beep still win over "silence -> person"."""
    human_long_silence_periods: float = 5.0
    """That silence in syllable periods."""
    human_max_syllables: int = 15
    """Syllables from which silence no longer proves a person (then only the time budget decides)."""
    utterance_gap_ms: int = 900
    """Floor of the pause that ends an utterance (a new one starts with the next speech)."""
    utterance_gap_periods: float = 4.0
    """That pause in syllable periods."""
    sentence_pause_ms: int = 260
    """Floor of a pause between sentences: at least this long (and under the utterance gap),
    followed by more speech. People's pauses inside an answer are commas, shorter than sentences."""
    sentence_pause_periods: float = 1.75
    """That pause in syllable periods."""
    machine_sentences: int = 2
    """This many sentence pauses in the first utterance (three sentences) -> machine."""
    machine_sentence_syllables: int = 11
    """With a sentence pause, this many syllables -> machine ("Hi, it's Kate. Leave a message.")."""
    machine_speech_ms: int = 4000
    """Voiced time since answer at or above which it is a machine. A backstop only: a slow speaker's
    longest answer takes ~3.4 s of voice, so counting syllables (machine_syllables) decides long
    greetings at any rate, and this catches speech whose syllables do not stand out."""
    machine_utterance_ms: int = 5000
    """One utterance (pauses under the utterance gap) this long from its start -> machine. Also a
    backstop above a slow speaker's longest answer (~4 s from first to last word)."""
    machine_syllables: int = 15
    """This many syllable nuclei since answer -> machine, at any speaking rate (people's answers
    are at most ~13 syllables: "Good morning, Acme Dental, this is Sam speaking"). 0 turns it off."""
    syllable_dip_db: float = 4.0
    """How far the level must fall from a peak, and rise from a dip, for a new syllable nucleus."""
    syllable_floor_margin_db: float = 6.0
    """Syllables are counted on the speech band's level clamped from below at its noise floor plus
    this margin: level changes down in the noise (its own fluctuation, babble) make no nuclei."""
    max_words: int = 12
    """More word-like speech bursts than this before a human verdict -> machine."""
    word_gap_ms: int = 160
    """Floor of the silence that separates two words (for max_words)."""
    word_gap_periods: float = 1.0
    """That silence in syllable periods."""
    total_analysis_ms: int = 6000
    """Time budget for the human/machine verdict; then machine if mostly speech, else unknown."""
    timeout_machine_speech_ms: int = 2000
    """At the time budget, this much voiced time or more -> machine rather than unknown."""
    sit_min_tones: int = 3
    """This many different tones back to back (a special information tone before an intercept
    message) -> machine. 0 turns it off."""

    # --- beep: one stable spectral peak ---
    beep_min_hz: float = 300.0
    """Lowest beep frequency."""
    beep_max_hz: float = 2500.0
    """Highest beep frequency."""
    beep_min_ms: int = 80
    """Shortest tone that is a beep."""
    beep_max_ms: int = 2000
    """Longest tone that is a beep (CED, dial tone and continuous tones are longer)."""
    beep_min_dbfs: float = -45.0
    """A beep frame is at least this loud."""
    beep_min_purity: float = 0.80
    """Share of the frame's 100-3600 Hz energy within +-50 Hz of the peak (speech and dual tones score low)."""
    beep_min_flatness: float = 0.35
    """Min/max ratio of 5 ms sub-block energies in a frame (beating dual tones such as 440+480 score low)."""
    beep_freq_tol_hz: float = 10.0
    """How far the peak may wander from the tone's running mean and still be the same tone."""
    beep_max_step_hz: float = 2.0
    """How far the peak may move from one frame to the next inside a tone. Generated and recorded
    beeps move under 0.5 Hz; a voiced vowel's pure-looking harmonic glides ~4 Hz (median) per frame."""
    beep_max_dropout_ms: int = 20
    """Frames inside a tone that may fail the tests (a noise burst) without ending it; once the tone
    has lasted beep_min_ms this includes a frame whose peak jumps more than beep_max_step_hz but
    stays within twice that of the tone's mean (noise pulls the interpolated peak of a weak beep;
    a glide moves away from the mean)."""
    beep_steady_db: float = 3.0
    """A beep holds its level: at least beep_min_ms - 20 ms of its frames are within this of its
    loudest frame. The partials of a knock, a clink or hammering ring at one frequency as a beep
    does, but die away (a 100 ms ring loses ~1.7 dB a frame)."""
    beep_confirm_ms: int = 80
    """Quiet after a tone before it is accepted: a different tone right after it means a sequence
    (SIT), and speech right after it means it was a held vowel."""
    beep_min_gap_ms: int = 100
    """Speech-free time before a tone for it to stand alone. A tone closer to speech than this
    (a held vowel looks like one) must also pass the beep_attached_* tests."""
    beep_attached_min_ms: int = 160
    """Shortest tone that directly follows speech and still counts as a beep."""
    beep_attached_quiet_ms: int = 200
    """Quiet (no speech, no tone) needed after a tone that directly follows speech."""
    fax_cng_hz: float = 1100.0
    """Fax calling tone, rejected."""
    fax_ced_hz: float = 2100.0
    """Fax/modem answer tone, rejected."""
    reject_band_hz: float = 25.0
    """Half-width of the rejected bands around the fax tones."""

    # --- after a machine verdict: where does the greeting end? ---
    greeting_end_silence_ms: int = 2500
    """Silence after the greeting's last speech that stands in for a beep that never comes."""
    max_greeting_ms: int = 30000
    """Hard bound (since answer) on waiting for the beep or the greeting's end."""

    def replace(self, **changes: float | int) -> AmdParams:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


DEFAULT_PARAMS = AmdParams()
