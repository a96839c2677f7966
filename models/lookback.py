"""回头看承诺 (S8): each item looked back on at its deadline or when crossed off."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from fractions import Fraction

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import UtcDateTime, enum_type, utcnow
from models.evaluation import PublicVote


class LookBackState(StrEnum):
    """Where an item's look-back stands: open, consolidated (销号), or sent to 限期整改."""

    OPEN = "open"
    CONSOLIDATED = "consolidated"
    RECTIFY = "rectify"


class OwnerAnswer(StrEnum):
    """The owner's one-tap answer to the look-back's question (做到了吗)."""

    YES = "yes"
    PARTLY = "partly"
    NO = "no"


def satisfied(
    share: str, owner: OwnerAnswer | None, votes: dict[str, int]
) -> tuple[bool, Fraction | None]:
    """Tell whether a look-back is satisfied, and the share of 满意+基本满意 among the votes.

    Satisfied: the owner did not answer 没做到, and the share of 满意 and 基本满意 among the
    branch-mates' opinions and the public's votes reaches ``share`` (``"2/3"``). Without any
    vote only the owner's answer counts (做到了).
    """
    total = sum(votes.get(v.value, 0) for v in PublicVote)
    good = votes.get(PublicVote.SATISFIED.value, 0) + votes.get(PublicVote.BASIC.value, 0)
    if owner is OwnerAnswer.NO:
        return False, Fraction(good, total) if total else None
    if not total:
        return owner is OwnerAnswer.YES, None
    got = Fraction(good, total)
    return got >= Fraction(share), got


class LookBack(SQLModel, table=True):
    """One item's look-back: the owner's answer, the decision and its one-line mechanism.

    Attributes:
        poll_id: the week's poll in the linked group that asked the public about this item.
        mechanism: the lasting mechanism (长效机制) recorded when consolidated.
        cause: why it was not satisfied, when sent to rectification.
    """

    __table_args__ = (UniqueConstraint("item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    item_id: int = Field(foreign_key="pledgeitem.id")
    pledge_id: int = Field(foreign_key="pledge.id", index=True)
    org_id: int = Field(foreign_key="org.id", index=True)
    started_on: date
    owner_answer: OwnerAnswer | None = Field(default=None, sa_type=enum_type(OwnerAnswer, 8))
    owner_note: str = Field(default="", max_length=500)
    owner_photo: str | None = Field(default=None, max_length=256)
    answered_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    poll_id: int | None = Field(default=None, foreign_key="poll.id")
    state: LookBackState = Field(
        default=LookBackState.OPEN, sa_type=enum_type(LookBackState, 16), index=True
    )
    mechanism: str = Field(default="", max_length=200)
    cause: str = Field(default="", max_length=1000)
    decided_by: int | None = Field(default=None, foreign_key="member.id")
    decided_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))


class LookBackOpinion(SQLModel, table=True):
    """A branch-mate asked for their opinion on an item's look-back (满意/基本满意/不满意)."""

    __table_args__ = (UniqueConstraint("lookback_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    lookback_id: int = Field(foreign_key="lookback.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    vote: PublicVote | None = Field(default=None, sa_type=enum_type(PublicVote, 16))
    asked_at: datetime = Field(default_factory=utcnow, sa_column=Column(UtcDateTime()))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime()))
