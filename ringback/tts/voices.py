"""Map TwiML ``<Say voice language>`` onto espeak-ng voice names."""

from __future__ import annotations

# TwiML 2008 languages -> espeak-ng language voices. Twilio's "en" is American English.
LANGUAGES: dict[str, str] = {
    "en": "en-us",
    "en-gb": "en",
    "es": "es",
    "fr": "fr",
    "de": "de",
}

# TwiML voices -> espeak-ng variants (files in espeak-ng-data/voices/!v).
VOICES: dict[str, str] = {
    "man": "m3",
    "woman": "f3",
}

DEFAULT_RATE = 165  # words per minute; espeak's 175 sounds hurried over the phone
DEFAULT_PITCH = 50  # espeak's 0..100 scale


class UnknownVoice(ValueError):
    """A voice, language or variant we cannot map."""


def espeak_voice_name(voice: str, language: str, variant: str | None = None) -> str:
    """``("woman", "en")`` -> ``"en-us+f3"``. ``variant`` (e.g. ``"klatt2"``) overrides the voice's."""
    lang = LANGUAGES.get(language.lower()) if language else None
    if lang is None:
        # Accept espeak language names as they are (corpus building uses many).
        if not language or not all(c.isalnum() or c == "-" for c in language):
            raise UnknownVoice(f"unsupported language {language!r}")
        lang = language.lower()
    var = variant if variant is not None else VOICES.get(voice.lower())
    if var is None:
        raise UnknownVoice(f"unsupported voice {voice!r}")
    if var and not all(c.isalnum() or c in "-_" for c in var):
        raise UnknownVoice(f"bad variant {var!r}")
    return f"{lang}+{var}" if var else lang
