"""/Transcriptions and /Recordings/{RE}/Transcriptions (dates in epoch seconds; .txt is the text)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..store.models import Recording, Transcription
from .context import Ctx, Reply, page_of
from .errors import not_found
from .render import Node, epoch, text


def transcription_node(t: Transcription) -> Node:
    return Node(
        "Transcription",
        [
            Node("Sid", t.sid),
            Node("DateCreated", epoch(t.date_created)),
            Node("DateUpdated", epoch(t.date_updated)),
            Node("AccountSid", t.account_sid),
            Node("Status", t.status),
            Node("RecordingSid", t.recording_sid),
            Node("Duration", str(t.duration)),
            Node("TranscriptionText", text(t.transcription_text)),
            Node("Price", text(t.price)),
        ],
    )


def _check_recording(s: Any, ctx: Ctx, rec_sid: str) -> None:
    r = s.get(Recording, rec_sid)
    if r is None or r.account_sid != ctx.account_sid:
        raise not_found()


def list_transcriptions(ctx: Ctx, rec_sid: str | None = None) -> Reply:
    where: list[Any] = [Transcription.account_sid == ctx.account_sid]
    if rec_sid is not None:
        where.append(Transcription.recording_sid == rec_sid)
    stmt = select(Transcription).where(*where).order_by(Transcription.date_updated.desc(), Transcription.sid.desc())
    with ctx.store.session(readonly=True) as s:
        if rec_sid is not None:
            _check_recording(s, ctx, rec_sid)
        return Reply(doc=page_of(s, ctx, "Transcriptions", stmt, transcription_node))


def get_transcription(ctx: Ctx, sid: str, rec_sid: str | None = None) -> Reply:
    with ctx.store.session(readonly=True) as s:
        t = s.get(Transcription, sid)
        if t is None or t.account_sid != ctx.account_sid or (rec_sid is not None and t.recording_sid != rec_sid):
            raise not_found()
    if ctx.fmt == "txt":
        return Reply(body=(t.transcription_text or "").encode("utf-8"), content_type="text/plain; charset=utf-8")
    return Reply(doc=transcription_node(t))


def list_recording_transcriptions(ctx: Ctx, rec_sid: str) -> Reply:
    return list_transcriptions(ctx, rec_sid)


def get_recording_transcription(ctx: Ctx, rec_sid: str, sid: str) -> Reply:
    return get_transcription(ctx, sid, rec_sid)
