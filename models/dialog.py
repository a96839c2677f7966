"""Dialog state, processed updates and the outbox: what makes a restart lose nothing."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import JsonColumn, UtcDateTime, enum_type, utcnow


class DialogState(SQLModel, table=True):
    """Where one person stands in one chat: the dialog, its step and its typed data.

    Attributes:
        version: bumped on every write; a write with a stale version is refused, so two
            updates for one person never interleave.
    """

    __table_args__ = (UniqueConstraint("platform", "chat_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    dialog: str | None = Field(default=None, max_length=32)
    step: str | None = Field(default=None, max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn))
    version: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


class ProcessedUpdate(SQLModel, table=True):
    """An update already handled, so a redelivered one has no second effect."""

    platform: str = Field(primary_key=True, max_length=16)
    update_id: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime(), index=True))


class OutboxStatus(StrEnum):
    """Delivery state of one queued message."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class Priority:
    """Lower goes first: a reply to someone talking to the bot beats a broadcast."""

    REPLY = 0
    NOTICE = 5
    BROADCAST = 9


class Outbox(SQLModel, table=True):
    """A message to deliver, committed with the change that caused it.

    Attributes:
        dedup_key: one cause, one message: a second row with the same key is never queued.
        kind: ``message``, ``edit``, ``commands``, ``callback_answer`` …
        payload: the reply as data (template key, context, buttons), rendered at delivery.
        lease_until: a worker that claimed the row owns it until then; after, anyone may retry.
    """

    __table_args__ = (Index("ix_outbox_due", "status", "priority", "not_before"),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str | None = Field(default=None, max_length=200, unique=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=64, index=True)
    kind: str = Field(default="message", max_length=16)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn))
    priority: int = Priority.NOTICE
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=enum_type(OutboxStatus, 8))
    attempts: int = 0
    not_before: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    lease_owner: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    sent_message_id: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, max_length=500)
