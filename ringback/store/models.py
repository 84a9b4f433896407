"""SQLAlchemy 2 models: the durable state of ringback.

All timestamps are timezone-aware UTC (see UTCDateTime). Column names follow the REST fields
in snake_case; the renderers map them back to the 2008 element names.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    PostgreSQL keeps timestamptz natively; SQLite has no zone support, so values are stored
    as naive UTC and re-labelled UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


SID = String(34)
NUMBER = String(20)
URL = String(2048)


# REST call Status (integer) values, reference section 2.2.
STATUS_QUEUED = 0
STATUS_IN_PROGRESS = 1
STATUS_COMPLETE = 2
STATUS_BUSY = 3
STATUS_APP_ERROR = 4
STATUS_NO_ANSWER = 5

# Call Flags bits.
FLAG_INBOUND = 1
FLAG_API = 2
FLAG_DIAL = 4

# Internal call states (kept apart from REST Status, DESIGN "The life of a call").
CALL_STATES = ("queued", "claimed", "dialing", "ringing", "analysing", "running", "ended")
LIVE_STATES = ("claimed", "dialing", "ringing", "analysing", "running")


class Account(Base):
    __tablename__ = "accounts"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)
    friendly_name: Mapped[str] = mapped_column(String(64), default="")
    auth_token: Mapped[str] = mapped_column(String(32))
    status: Mapped[int] = mapped_column(Integer, default=2)  # 2 = Active
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)


_TOP = text("parent_sid IS NULL")
# A started call whose DateUpdated is before its StartTime or over an hour after it: the rows a
# StartTime filter cannot find by a bounded DateUpdated window (ringback.store.listing). The
# texts must match the queries' exactly for the planners to use the partial index.
LAG_SQLITE = "(date_updated < start_time OR date_updated > datetime(start_time, '+1 hours'))"
LAG_PG = "(date_updated < start_time OR date_updated - start_time > interval '1 hour')"
_SEGMENT = text("parent_sid IS NOT NULL")


_QUEUED = text("state = 'queued' AND parent_sid IS NULL")


class Call(Base):
    __tablename__ = "calls"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)
    account_sid: Mapped[str] = mapped_column(SID)
    # Set on <Dial> legs (Segments): the call they belong to; they also get call_segment_sid.
    parent_sid: Mapped[str | None] = mapped_column(SID, default=None)
    call_segment_sid: Mapped[str | None] = mapped_column(SID, default=None)
    called: Mapped[str] = mapped_column(NUMBER)
    caller: Mapped[str] = mapped_column(NUMBER)
    phone_number_sid: Mapped[str | None] = mapped_column(SID, default=None)
    status: Mapped[int] = mapped_column(Integer, default=STATUS_QUEUED)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    flags: Mapped[int] = mapped_column(Integer, default=FLAG_API)
    url: Mapped[str | None] = mapped_column(URL, default=None)
    method: Mapped[str] = mapped_column(String(8), default="POST")
    send_digits: Mapped[str | None] = mapped_column(String(32), default=None)
    if_machine: Mapped[str | None] = mapped_column(String(8), default=None)  # Continue | Hangup
    timeout: Mapped[int] = mapped_column(Integer, default=60)
    start_time: Mapped[datetime | None] = mapped_column(default=None)
    end_time: Mapped[datetime | None] = mapped_column(default=None)
    duration: Mapped[int | None] = mapped_column(Integer, default=None)
    price: Mapped[str | None] = mapped_column(String(16), default=None)
    dial_status: Mapped[str | None] = mapped_column(String(20), default=None)
    sip_response_code: Mapped[int | None] = mapped_column(Integer, default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    # A pending live redirect (POST /Calls/{CA} CurrentUrl); the engine consumes and clears it.
    redirect_url: Mapped[str | None] = mapped_column(URL, default=None)
    redirect_method: Mapped[str | None] = mapped_column(String(8), default=None)
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)
    annotation: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (
        # The engine's queue: oldest queued first (FOR UPDATE SKIP LOCKED on PostgreSQL).
        Index("ix_calls_state_created", "state", "date_created"),
        # The dialer's poll reads only this (migration 0006): on PostgreSQL the planner otherwise
        # AND-ed two bitmap scans over every call of the account, about 1.4 ms of server CPU per
        # poll with 5,000 finished calls, and the dialer polls once per API commit.
        Index("ix_calls_queued", "date_created", sqlite_where=_QUEUED, postgresql_where=_QUEUED),
        # Lists show top-level calls only, newest DateUpdated first; one index per filter. Partial
        # (top-level rows only), in list order, then status and start_time so that a walk filtering
        # on them reads the index alone (migrations 0003, 0004).
        *(
            Index(name, *cols, "date_updated", "sid", *(c for c in ("status", "start_time") if c not in cols),
                  sqlite_where=_TOP, postgresql_where=_TOP)
            for name, cols in (
                ("ix_calls_acct_updated", ()),
                ("ix_calls_acct_called", ("called",)),
                ("ix_calls_acct_caller", ("caller",)),
                ("ix_calls_acct_status", ("status",)),
            )
            for cols in [("account_sid", *cols)]
        ),
        # Started calls updated outside the usual window after StartTime (ringback.store.listing).
        Index("ix_calls_acct_lag", "account_sid", "date_updated", "sid", "status", "start_time",
              sqlite_where=text(f"parent_sid IS NULL AND {LAG_SQLITE}"),
              postgresql_where=text(f"parent_sid IS NULL AND {LAG_PG}")),
        Index("ix_calls_parent", "parent_sid", sqlite_where=_SEGMENT, postgresql_where=_SEGMENT),
    )


class IncomingNumber(Base):
    __tablename__ = "incoming_numbers"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)
    account_sid: Mapped[str] = mapped_column(SID, index=True)
    phone_number: Mapped[str] = mapped_column(NUMBER, unique=True)
    friendly_name: Mapped[str] = mapped_column(String(64), default="")
    url: Mapped[str | None] = mapped_column(URL, default=None)
    method: Mapped[str] = mapped_column(String(8), default="POST")
    voice_fallback_url: Mapped[str | None] = mapped_column(URL, default=None)
    voice_fallback_method: Mapped[str] = mapped_column(String(8), default="POST")
    voice_caller_id_lookup: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_url: Mapped[str | None] = mapped_column(URL, default=None)
    sms_method: Mapped[str] = mapped_column(String(8), default="POST")
    sms_fallback_url: Mapped[str | None] = mapped_column(URL, default=None)
    sms_fallback_method: Mapped[str] = mapped_column(String(8), default="POST")
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)


class CallerId(Base):
    __tablename__ = "caller_ids"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)
    account_sid: Mapped[str] = mapped_column(SID)
    phone_number: Mapped[str] = mapped_column(NUMBER, index=True)
    friendly_name: Mapped[str] = mapped_column(String(64), default="")
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ux_caller_ids_acct_number", "account_sid", "phone_number", unique=True),)


class ValidationRequest(Base):
    """A pending OutgoingCallerId validation: the engine calls the number and gathers the code."""

    __tablename__ = "validation_requests"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)  # VA...
    account_sid: Mapped[str] = mapped_column(SID, index=True)
    phone_number: Mapped[str] = mapped_column(NUMBER)
    friendly_name: Mapped[str] = mapped_column(String(64), default="")
    call_delay: Mapped[int] = mapped_column(Integer, default=0)
    validation_code: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|calling|validated|failed
    call_sid: Mapped[str | None] = mapped_column(SID, default=None)
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)


class Recording(Base):
    __tablename__ = "recordings"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)
    account_sid: Mapped[str] = mapped_column(SID)
    call_sid: Mapped[str | None] = mapped_column(SID, default=None, index=True)
    duration: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str] = mapped_column(String(1024))  # WAV file on disk; the DB keeps metadata only
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_recordings_acct_created", "account_sid", "date_created"),)


class Transcription(Base):
    __tablename__ = "transcriptions"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)
    account_sid: Mapped[str] = mapped_column(SID)
    recording_sid: Mapped[str] = mapped_column(SID, index=True)
    status: Mapped[str] = mapped_column(String(16), default="in-progress")  # in-progress|completed|failed
    duration: Mapped[int] = mapped_column(Integer, default=0)
    transcription_text: Mapped[str | None] = mapped_column(Text, default=None)
    price: Mapped[str | None] = mapped_column(String(16), default=None)
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_transcriptions_acct_updated", "account_sid", "date_updated"),)


class Notification(Base):
    __tablename__ = "notifications"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)
    account_sid: Mapped[str] = mapped_column(SID)
    call_sid: Mapped[str | None] = mapped_column(SID, default=None, index=True)
    log: Mapped[int] = mapped_column(Integer, default=0)  # 0 error, 1 warning
    error_code: Mapped[str] = mapped_column(String(8), default="")
    more_info: Mapped[str] = mapped_column(String(256), default="")
    message_text: Mapped[str] = mapped_column(Text, default="")
    message_date: Mapped[datetime] = mapped_column(default=utcnow)
    request_url: Mapped[str] = mapped_column(Text, default="")
    request_method: Mapped[str] = mapped_column(String(8), default="")
    request_variables: Mapped[str] = mapped_column(Text, default="")
    response_headers: Mapped[str] = mapped_column(Text, default="")
    response_body: Mapped[str] = mapped_column(Text, default="")
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_notifications_acct_date", "account_sid", "message_date"),
        Index("ix_notifications_acct_log", "account_sid", "log", "message_date"),
    )


class Conference(Base):
    __tablename__ = "conferences"

    sid: Mapped[str] = mapped_column(SID, primary_key=True)
    account_sid: Mapped[str] = mapped_column(SID)
    friendly_name: Mapped[str] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(Integer, default=0)  # 0 init, 1 in-progress, 2 completed
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_conferences_acct_updated", "account_sid", "date_updated"),)


class Participant(Base):
    __tablename__ = "participants"

    conference_sid: Mapped[str] = mapped_column(SID, primary_key=True)
    call_sid: Mapped[str] = mapped_column(SID, primary_key=True)
    account_sid: Mapped[str] = mapped_column(SID)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    start_conference_on_enter: Mapped[bool] = mapped_column(Boolean, default=True)
    end_conference_on_exit: Mapped[bool] = mapped_column(Boolean, default=False)
    date_created: Mapped[datetime] = mapped_column(default=utcnow)
    date_updated: Mapped[datetime] = mapped_column(default=utcnow)


class Count(Base):
    """Maintained row counts so list totals need no scan (kept by database triggers on calls).

    dim/value: ('all', ''), ('status', '2'), ('called', '4155551212'), ('caller', ...),
    ('day', '2009-07-04': calls whose StartTime falls on that UTC day).
    """

    __tablename__ = "counts"

    account_sid: Mapped[str] = mapped_column(SID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(16), primary_key=True)
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(32), primary_key=True)
    # A count is the sum of its shards: on PostgreSQL each writing connection bumps its own row
    # (migration 0007), so the API and the engine never wait on each other's count rows.
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=0, server_default="0")
    n: Mapped[int] = mapped_column(Integer, default=0)


class DialPacing(Base):
    """Per-account token bucket shared by every node (DESIGN: pacing holds across nodes).

    next_at is wall-clock epoch seconds (nodes keep their clocks in step with NTP): the moment
    the account's next call may be claimed, one interval per call, with a burst allowance.
    """

    __tablename__ = "dial_pacing"

    account_sid: Mapped[str] = mapped_column(SID, primary_key=True)
    next_at: Mapped[float] = mapped_column(Float, default=0.0)


class Node(Base):
    """A live engine node's heartbeat; a node silent too long is dead and its calls are taken over."""

    __tablename__ = "nodes"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
