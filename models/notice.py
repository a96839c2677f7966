"""Public notices (公告): what an office, a reviewer or a secretary sent, to whom, and how far.

A notice's recipients are outbox rows whose dedup key starts with ``notice:<id>:``; the figures
(送达 / 待发 / 无法送达 / 短信) are read back from those rows, so a restart loses nothing and
nothing is counted twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from models.base import JsonColumn, UtcDateTime, enum_type, utcnow


class Audience(StrEnum):
    """Who a notice goes to, inside the sender's subtree."""

    MEMBERS = "members"
    SECRETARIES = "secretaries"
    GROUPS = "groups"
    #: every member of one organization below the sender's (``Notice.org_id`` is that one)
    ORG = "org"


class Notice(SQLModel, table=True):
    """One notice, written once and queued once.

    Attributes:
        token: what makes a second confirmation (a double tap, a re-run of the command line)
            find this notice instead of making another; unique.
        scope_org_id: the organization whose subtree the sender may address.
        org_id: the organization the audience is taken from (the scope, or one child below).
        attachment: the reply attachment as data (a stored file id, or the platform's file id).
        members: members in the audience; ``unreachable`` of them have no channel at all.
        planned: the figures of the preview, per channel (``telegram``, ``sms``, ``group`` …).
        chat_*: the sender's chat and the message that shows the progress (edited in place).
        step: the last progress figures shown, so an edit is queued only when they change.
        finished_at: every row delivered or given up; the summary was queued.
    """

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=128, unique=True)
    sender_member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    scope_org_id: int = Field(foreign_key="org.id")
    org_id: int = Field(foreign_key="org.id")
    audience: Audience = Field(sa_type=enum_type(Audience, 16))
    text: str = Field(sa_column=Column(Text, nullable=False))
    attachment: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonColumn))
    members: int = 0
    unreachable: int = 0
    planned: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn))
    first_outbox_id: int | None = None
    last_outbox_id: int | None = None
    platform: str | None = Field(default=None, max_length=16)
    chat_id: str | None = Field(default=None, max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    locale: str = Field(default="zh_CN", max_length=8)
    step: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), index=True))
