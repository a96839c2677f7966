"""Values kept once per store, such as the offline key that signs buttons."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.base import UtcDateTime, utcnow


class StoreValue(SQLModel, table=True):
    """One named value of this store, written once and read by every process using it.

    Attributes:
        name: what the value is for (``callback_key``, …).
        value: the value itself, as text.
    """

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=512)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
