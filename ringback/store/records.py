"""Plain functions the engine calls to record what happened on a call."""

from __future__ import annotations

import os

from sqlalchemy.orm import Session

from ..sids import NOTIFICATION, RECORDING, TRANSCRIPTION, new_sid
from .models import Notification, Recording, Transcription, utcnow

MORE_INFO = "http://www.twilio.com/docs/errors/{code}"
LOG_ERROR = 0
LOG_WARNING = 1


def _clean(value: str | None) -> str:
    """Engine-supplied text may hold anything fetched from the web; PostgreSQL rejects NUL."""
    return (value or "").replace("\x00", "\ufffd")


def create_notification(
    session: Session,
    account_sid: str,
    call_sid: str | None,
    log: int,
    code: int | str,
    text: str,
    *,
    request_url: str = "",
    request_method: str = "",
    request_variables: str = "",
    response_headers: str = "",
    response_body: str = "",
) -> Notification:
    """Add a Notification (log 0 error, 1 warning) to the session; the caller commits."""
    now = utcnow()
    note = Notification(
        sid=new_sid(NOTIFICATION),
        account_sid=account_sid,
        call_sid=call_sid,
        log=int(log),
        error_code=str(code),
        more_info=MORE_INFO.format(code=code) if code != "" else "",
        message_text=_clean(text),
        message_date=now,
        request_url=_clean(request_url),
        request_method=_clean(request_method),
        request_variables=_clean(request_variables),
        response_headers=_clean(response_headers),
        response_body=_clean(response_body),
        date_created=now,
        date_updated=now,
    )
    session.add(note)
    return note


def recording_path(recordings_dir: str, account_sid: str, recording_sid: str) -> str:
    """Where a recording's WAV lives: one directory per account."""
    return os.path.join(recordings_dir, account_sid, recording_sid + ".wav")


def create_recording(
    session: Session,
    account_sid: str,
    call_sid: str | None,
    duration: int,
    path: str,
    *,
    sid: str | None = None,
) -> Recording:
    """Add a Recording's metadata; the WAV itself is already at path."""
    now = utcnow()
    rec = Recording(
        sid=sid or new_sid(RECORDING),
        account_sid=account_sid,
        call_sid=call_sid,
        duration=int(duration),
        path=path,
        date_created=now,
        date_updated=now,
    )
    session.add(rec)
    return rec


def create_transcription(
    session: Session,
    account_sid: str,
    recording_sid: str,
    *,
    status: str = "in-progress",
    duration: int = 0,
    text: str | None = None,
    price: str | None = None,
    sid: str | None = None,
) -> Transcription:
    now = utcnow()
    tr = Transcription(
        sid=sid or new_sid(TRANSCRIPTION),
        account_sid=account_sid,
        recording_sid=recording_sid,
        status=status,
        duration=int(duration),
        transcription_text=text,
        price=price,
        date_created=now,
        date_updated=now,
    )
    session.add(tr)
    return tr
