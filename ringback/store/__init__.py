"""Storage: SQLAlchemy models, engine/session factory, migrations and query helpers."""

from .db import Store, make_engine
from .migrate import upgrade
from .records import create_notification, create_recording, create_transcription

__all__ = ["Store", "make_engine", "upgrade", "create_notification", "create_recording", "create_transcription"]
