"""The audit trail: every decision is a record, chained by hashes so an edit is detectable."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.base import JsonColumn, UtcDateTime, utcnow

GENESIS = "0" * 64


class AuditEvent(SQLModel, table=True):
    """One thing that happened: who, when, what, with which content.

    Attributes:
        prev_hash: the ``hash`` of the event before this one (GENESIS for the first).
        hash: sha256 over prev_hash and this event's canonical content.
    """

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime(), index=True))
    actor_member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    kind: str = Field(max_length=32, index=True)
    subject: str = Field(default="", max_length=64, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


def event_hash(
    prev_hash: str, at: datetime, actor: int | None, kind: str, subject: str, payload: dict
) -> str:
    """Return the chained hash of one event's canonical form."""
    canonical = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor, kind, subject, payload],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
