"""What the SMS gateways were handed: one row per gateway message id, with its receipt.

An SMPP gateway answers each segment (one ``submit_sm``) with its own message id, so a message
of three segments has three rows of ``segments=1``; an HTTP gateway splits the text itself and
answers one id, so it has one row with ``segments=3``. The sum of ``segments`` is what the
operator bills. A delivery receipt may arrive before the sender has written its row: it then
creates the row without ``outbox_id`` and the sender's write fills that in.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from models.base import UtcDateTime, enum_type, utcnow


class SmsStatus(StrEnum):
    """Where one gateway message stands."""

    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    FAILED = "failed"


class SmsSent(SQLModel, table=True):
    """One message id a gateway gave back, the outbox row it belongs to and its receipt.

    Attributes:
        message_id: the gateway's id (``<gateway>:<id>``, unique across gateways).
        outbox_id: the outbox row this segment (or whole message) carried; None while only the
            receipt is known.
        segments: the segments this id covers (1 on SMPP, the whole message on HTTP).
        part: the segment's number within its message (1-based; 0 when ``segments`` covers all).
        receipt_state: the gateway's own word for the state (DELIVRD, UNDELIV …).
    """

    __tablename__ = "sms_sent"

    message_id: str = Field(primary_key=True, max_length=80)
    outbox_id: int | None = Field(default=None, index=True)
    segments: int = 0
    part: int = 0
    status: SmsStatus = Field(default=SmsStatus.SUBMITTED, sa_type=enum_type(SmsStatus, 12))
    receipt_state: str | None = Field(default=None, max_length=16)
    submitted_at: datetime | None = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    receipt_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
