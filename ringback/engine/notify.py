"""Notifications raised by the engine (app fetch failures, bad TwiML, crashes)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ringback.store.records import create_notification

log = logging.getLogger("ringback.notify")

ERROR, WARNING = 0, 1


def add_notification(
    session: Session,
    account_sid: str,
    call_sid: str | None,
    code: int | str,
    text: str,
    *,
    level: int = ERROR,
    request_url: str = "",
    request_method: str = "",
    request_variables: str = "",
    response_headers: str = "",
    response_body: str = "",
) -> str:
    note = create_notification(
        session, account_sid, call_sid, level, code, text,
        request_url=request_url, request_method=request_method, request_variables=request_variables,
        response_headers=response_headers, response_body=response_body[:65536],
    )
    log.info("notification %s call=%s code=%s %s", note.sid, call_sid, code, text)
    return note.sid
