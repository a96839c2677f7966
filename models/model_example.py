"""先进典型 (S5): a model example named by an office, with a cultivation plan tracked monthly."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import JsonColumn, UtcDateTime, enum_type, utcnow
from models.pledge import OwnerKind
from models.progress import Progress


class ModelExample(SQLModel, table=True):
    """A member or organization named a model example, with its cultivation plan (培养计划).

    Attributes:
        subject: ``m:<member id>`` or ``o:<org id>``, as in the evaluation.
        leader_id: the responsible leader (负责领导), from the roster.
        milestones: ``[{"month": "2027-09", "text": …}]``, the plan's milestones by month.
    """

    __table_args__ = (UniqueConstraint("campaign_id", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    subject: str = Field(max_length=24)
    owner_kind: OwnerKind = Field(sa_type=enum_type(OwnerKind, 8))
    org_id: int = Field(foreign_key="org.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    leader_id: int = Field(foreign_key="member.id")
    goal: str = Field(max_length=500)
    measures: str = Field(max_length=1000)
    milestones: list[dict] = Field(default_factory=list, sa_column=Column(JsonColumn))
    named_by: int = Field(foreign_key="member.id")
    named_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


class ModelProgress(SQLModel, table=True):
    """One month's progress of a cultivation plan, reported once a month (revisable that month)."""

    __table_args__ = (UniqueConstraint("model_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="modelexample.id", index=True)
    month: str = Field(max_length=7)
    status: Progress = Field(sa_type=enum_type(Progress))
    reported_by: int = Field(foreign_key="member.id")
    reported_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
