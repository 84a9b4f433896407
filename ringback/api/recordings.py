"""/Recordings: list (filter CallSid), instance audio (WAV default, .mp3, .xml; no auth), DELETE."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from sqlalchemy import select

from ..store.models import Recording
from .context import Ctx, Reply, page_of
from .errors import not_found
from .render import Node, rfc2822


def recording_node(r: Recording) -> Node:
    return Node(
        "Recording",
        [
            Node("Sid", r.sid),
            Node("AccountSid", r.account_sid),
            Node("CallSid", r.call_sid),
            Node("Duration", str(r.duration)),
            Node("DateCreated", rfc2822(r.date_created)),
            Node("DateUpdated", rfc2822(r.date_updated)),
        ],
    )


def list_recordings(ctx: Ctx) -> Reply:
    where: list[Any] = [Recording.account_sid == ctx.account_sid]
    for c in ctx.query:
        if c.name == "CallSid" and c.op == "=":
            where.append(Recording.call_sid == c.value)
    stmt = select(Recording).where(*where).order_by(Recording.date_created.desc(), Recording.sid.desc())
    with ctx.store.session(readonly=True) as s:
        return Reply(doc=page_of(s, ctx, "Recordings", stmt, recording_node))


def _own(s: Any, ctx: Ctx, sid: str) -> Recording:
    r = s.get(Recording, sid)
    if r is None or r.account_sid != ctx.account_sid:
        raise not_found()
    return r


def _mp3(wav_path: str) -> bytes:
    """Encode the WAV to MP3 once and keep it beside the WAV."""
    mp3_path = os.path.splitext(wav_path)[0] + ".mp3"
    if not os.path.exists(mp3_path) or os.path.getmtime(mp3_path) < os.path.getmtime(wav_path):
        import soundfile as sf

        data, rate = sf.read(wav_path, dtype="float32")
        tmp = mp3_path + ".tmp"
        sf.write(tmp, data, rate, format="MP3")
        os.replace(tmp, mp3_path)
    with open(mp3_path, "rb") as fh:
        return fh.read()


def get_recording(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session(readonly=True) as s:
        r = _own(s, ctx, sid)
    if ctx.fmt in ("xml", "json", "csv", "html"):
        return Reply(doc=recording_node(r))
    if not os.path.isfile(r.path):
        raise not_found()
    if ctx.fmt == "mp3":
        return Reply(body=_mp3(r.path), content_type="audio/mpeg")
    with open(r.path, "rb") as fh:
        return Reply(body=fh.read(), content_type="audio/x-wav")


def delete_recording(ctx: Ctx, sid: str) -> Reply:
    with ctx.store.session() as s:
        r = _own(s, ctx, sid)
        path = r.path
        s.delete(r)
    for p in (path, os.path.splitext(path)[0] + ".mp3"):
        with contextlib.suppress(OSError):
            os.remove(p)
    return Reply(204)
