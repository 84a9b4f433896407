"""Transcription of recordings with pocketsphinx (its English model ships inside the wheel).

Runs on a worker thread after the <Record> action, never on the call's path. The model is 16 kHz,
so the 8 kHz recording is resampled first (soxr). The result lands in the Transcription resource
and, when <Record transcribeCallback> was given, is POSTed to the app.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import update

from ringback.sids import new_sid
from ringback.store.models import Transcription, utcnow
from ringback.store.records import create_transcription
from ringback.twiml.channel import Pcm, RecordingInfo

if TYPE_CHECKING:
    from ringback.engine.channel import LegChannel

log = logging.getLogger("ringback.transcribe")
MAX_SECONDS = 120.0
_local = threading.local()


def recognise(pcm: Pcm) -> str:
    """English text of 8 kHz int16 audio ('' when nothing is recognised)."""
    import soxr
    from pocketsphinx import Decoder

    decoder = getattr(_local, "decoder", None)
    if decoder is None:
        decoder = _local.decoder = Decoder(samprate=16000, loglevel="FATAL")
    wide = soxr.resample(pcm.astype(np.float32) / 32768.0, 8000, 16000)
    raw = np.clip(wide * 32767.0, -32768, 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(raw, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr.strip() if hyp is not None else ""


def start_transcription(chan: LegChannel, recording: RecordingInfo, pcm: Pcm, callback_url: str | None) -> None:
    chan.ctx.spawn(_transcribe(chan, recording, pcm, callback_url), name=f"transcribe-{recording.sid}")


async def _transcribe(chan: LegChannel, recording: RecordingInfo, pcm: Pcm, callback_url: str | None) -> None:
    ctx = chan.ctx
    sid = new_sid("TR")
    duration = round(len(pcm) / 8000.0)
    await ctx.db(lambda s: create_transcription(s, chan.account_sid, recording.sid, duration=duration, sid=sid))
    status, text = "completed", ""
    if len(pcm) / 8000.0 > MAX_SECONDS:
        status = "failed"
    else:
        try:
            text = await asyncio.to_thread(recognise, pcm)
        except Exception:
            log.exception("transcription %s failed", sid)
            status = "failed"
    await ctx.db(lambda s: s.execute(update(Transcription).where(Transcription.sid == sid).values(
        status=status, transcription_text=text, date_updated=utcnow()
    )))
    if callback_url:

        params: dict[str, Any] = dict(chan.params)
        params.update({
            "CallStatus": "completed" if chan.hung_up.is_set() else "in-progress",
            "TranscriptionText": text,
            "TranscriptionStatus": status,
            "TranscriptionUrl": f"{ctx.settings.base_url}/2008-08-01/Accounts/{chan.account_sid}/Transcriptions/{sid}",
            "RecordingUrl": recording.url,
        })
        client = ctx.app_client(chan.account_sid, chan.auth_token)
        try:
            resp = await client.fetch(callback_url, "POST", params)
        finally:
            await client.aclose()
        if resp.error is not None:
            from ringback.twiml.channel import Notification

            await chan.notify(Notification(
                code=resp.error, message=resp.error_message or "transcribeCallback failed",
                request_url=resp.request_url, request_method="POST",
                request_variables=resp.request_variables_text(), response_headers=resp.response_headers_text(),
                response_body=resp.text,
            ))
