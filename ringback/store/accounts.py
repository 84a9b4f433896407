"""Accounts, numbers and caller IDs: bootstrap and the CLI's administrative functions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import numbers
from ..sids import ACCOUNT, PHONE_NUMBER, is_sid, new_auth_token, new_sid
from .db import Store
from .models import Account, CallerId, IncomingNumber, utcnow

SANDBOX_FIRST = 5005551000
SANDBOX_LAST = 5005551999  # the sandbox account block (0100..0199 are the virtual phones)


def create_account(store: Store, *, sid: str | None = None, auth_token: str | None = None,
                   friendly_name: str = "") -> tuple[str, str]:
    """A new account; returns (AccountSid, AuthToken)."""
    sid = sid or new_sid(ACCOUNT)
    token = auth_token or new_auth_token()
    if not is_sid(sid, ACCOUNT):
        raise ValueError(f"not an AccountSid: {sid!r}")
    if len(token) != 32:
        raise ValueError("AuthToken must be 32 characters")
    now = utcnow()
    with store.session() as s:
        s.add(Account(sid=sid, auth_token=token, friendly_name=friendly_name or sid, status=2,
                      date_created=now, date_updated=now))
    return sid, token


def next_sandbox_number(store: Store) -> str | None:
    """The lowest free number in the sandbox account block, or None when exhausted."""
    with store.session(readonly=True) as s:
        taken = set(s.scalars(select(IncomingNumber.phone_number).where(
            IncomingNumber.phone_number >= str(SANDBOX_FIRST),
            IncomingNumber.phone_number <= str(SANDBOX_LAST))))
    for n in range(SANDBOX_FIRST, SANDBOX_LAST + 1):
        if str(n) not in taken:
            return str(n)
    return None


def add_number(store: Store, account_sid: str, number: str, url: str | None = None, *,
               method: str = "POST", friendly_name: str | None = None) -> str:
    """Give an account an incoming number; returns its PN sid. ValueError if taken or bad."""
    canonical = numbers.normalize(number)
    now = utcnow()
    sid = new_sid(PHONE_NUMBER)
    try:
        with store.session() as s:
            if s.get(Account, account_sid) is None:
                raise ValueError(f"no such account {account_sid}")
            s.add(IncomingNumber(sid=sid, account_sid=account_sid, phone_number=canonical,
                                 friendly_name=(friendly_name or numbers.friendly(canonical))[:64],
                                 url=url, method=method, date_created=now, date_updated=now))
    except IntegrityError as exc:
        raise ValueError(f"number {canonical} is already in use") from exc
    return sid


def add_caller_id(store: Store, account_sid: str, number: str, friendly_name: str | None = None) -> str:
    """Add a validated outgoing caller ID directly (no validation call); returns its PN sid."""
    canonical = numbers.normalize(number)
    now = utcnow()
    with store.session() as s:
        if s.get(Account, account_sid) is None:
            raise ValueError(f"no such account {account_sid}")
        existing = s.scalar(select(CallerId).where(CallerId.account_sid == account_sid,
                                                   CallerId.phone_number == canonical))
        if existing is not None:
            return existing.sid
        sid = new_sid(PHONE_NUMBER)
        s.add(CallerId(sid=sid, account_sid=account_sid, phone_number=canonical,
                       friendly_name=(friendly_name or numbers.friendly(canonical))[:64],
                       date_created=now, date_updated=now))
    return sid


def bootstrap(store: Store, *, sandbox_trunk: bool, account_sid: str | None = None,
              auth_token: str | None = None) -> tuple[str, str, bool]:
    """Ensure an account exists at start-up; returns (sid, token, created).

    With RINGBACK_ACCOUNT_SID/RINGBACK_AUTH_TOKEN given, that account is created (or its token
    updated). With none and an empty database, a fresh account is made. New accounts on the
    sandbox trunk get the next free sandbox number (5005551000 for the first).
    """
    created = False
    with store.session() as s:
        if account_sid:
            acct = s.get(Account, account_sid)
            if acct is not None:
                if auth_token and acct.auth_token != auth_token:
                    acct.auth_token = auth_token
                    acct.date_updated = utcnow()
                return acct.sid, acct.auth_token, False
        else:
            first = s.scalar(select(Account).order_by(Account.date_created).limit(1))
            if first is not None:
                return first.sid, first.auth_token, False
    sid, token = create_account(store, sid=account_sid, auth_token=auth_token)
    created = True
    if sandbox_trunk:
        number = next_sandbox_number(store)
        if number is not None:
            add_number(store, sid, number)
    return sid, token, created
