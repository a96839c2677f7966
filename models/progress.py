"""Monthly progress (每月一报), pauses, branch reports up the tree, and rectifications."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import JsonColumn, UtcDateTime, enum_type, utcnow


class Progress(StrEnum):
    """How an item stands this month, as its owner reports it."""

    ON_TRACK = "on_track"
    DONE = "done"
    BLOCKED = "blocked"


class ProgressReport(SQLModel, table=True):
    """One item's report for one month: reported at most once a month, revisable that month."""

    __table_args__ = (UniqueConstraint("item_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="pledgeitem.id", index=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    month: str = Field(max_length=7, index=True)
    status: Progress = Field(sa_type=enum_type(Progress))
    note: str = Field(default="", max_length=1000)
    photos: list[str] = Field(default_factory=list, sa_column=Column(JsonColumn))
    reported_by: int = Field(foreign_key="member.id")
    reported_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


class PauseReason(StrEnum):
    """Why someone is not asked for a while."""

    LEAVE = "leave"
    ILLNESS = "illness"
    MIGRANT = "migrant"
    OTHER = "other"


class Pause(SQLModel, table=True):
    """A member not to be chased between two dates (请假, 生病, 外出务工)."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    starts_on: date
    ends_on: date
    reason: PauseReason = Field(sa_type=enum_type(PauseReason))
    created_by: int = Field(foreign_key="member.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


class OrgReport(SQLModel, table=True):
    """A branch's monthly report, confirmed by its secretary and so submitted upward (逐级上报).

    Attributes:
        figures: the counts as computed from the members' reports when confirmed.
        remarks: the secretary's correction or remark; figures are never typed by hand.
    """

    __table_args__ = (UniqueConstraint("org_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    month: str = Field(max_length=7, index=True)
    figures: dict = Field(default_factory=dict, sa_column=Column(JsonColumn))
    remarks: str = Field(default="", max_length=1000)
    confirmed_by: int = Field(foreign_key="member.id")
    confirmed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


class RectificationStatus(StrEnum):
    """Where a rectification (限期整改) stands."""

    OPEN = "open"
    CLAIMED = "claimed"
    CLOSED = "closed"


class Rectification(SQLModel, table=True):
    """限期整改: opened on a pledge or one item, with a deadline; the opener closes it."""

    id: int | None = Field(default=None, primary_key=True)
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    item_id: int | None = Field(default=None, foreign_key="pledgeitem.id")
    opened_by: int = Field(foreign_key="member.id", index=True)
    reason: str = Field(max_length=1000)
    deadline: date
    status: RectificationStatus = Field(
        default=RectificationStatus.OPEN, sa_type=enum_type(RectificationStatus)
    )
    opened_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    claimed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    claim_note: str = Field(default="", max_length=1000)
    closed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
