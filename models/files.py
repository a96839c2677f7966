"""Files the bot generated (attachments, charts), kept until they are delivered.

The outbox holds JSON, so a document or a chart travels as a reference to a ``StoredFile``
row; the delivery worker reads the bytes back when it sends. Keeping the bytes in the database
(not in a directory) means any worker on any machine can deliver any row, on SQLite and on
PostgreSQL alike, and a file commits or rolls back with the messages that carry it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from models.base import UtcDateTime, utcnow


class StoredFile(SQLModel, table=True):
    """One generated file: its name as the recipient sees it, its type and its bytes."""

    __tablename__ = "storedfile"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    mime: str = Field(max_length=128)
    size: int = 0
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UtcDateTime(), index=True)
    )
